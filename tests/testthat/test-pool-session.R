# farm(..., pool = ...): a session whose ranks run on batch-system pilots.
# sbatch, squeue and scancel are stand-ins (shell scripts first on PATH)
# that start this build's pesc-worker; the real Slurm is
# tests/slurm/test_slurm_session.py's.

stand_in <- function(path, text) {
  writeLines(c("#!/bin/sh", text), path)
  Sys.chmod(path, "0700")
}

test_that("a farm with a pool runs its ranks on pilots and cancels them when it returns", {
  build <- Sys.getenv("PESC_BUILD")
  skip_if(!nzchar(build), "PESC_BUILD is unset: set it to a build directory with daemons/")
  worker <- file.path(build, "daemons", "pesc-worker")
  skip_if(!file.exists(worker), paste("no", worker))
  dir <- tempfile("pesc-pool-")
  bin <- file.path(dir, "bin")
  dir.create(bin, recursive = TRUE)
  stand_in(file.path(bin, "sbatch"), c(
    sprintf('echo "$@" >> %s/sbatch.args', dir),
    "for job_script; do :; done",
    sprintf("id=$(( $(cat %s/next 2>/dev/null || echo 100) + 1 )); echo $id > %s/next", dir, dir),
    sprintf('echo "$id RUNNING None" >> %s/queue', dir),
    'SLURM_JOB_ID=$id setsid sh "$job_script" </dev/null >/dev/null 2>&1 &',
    sprintf("echo $! > %s/pid.$id", dir),
    "echo $id"))
  stand_in(file.path(bin, "squeue"), sprintf("cat %s/queue 2>/dev/null; exit 0", dir))
  stand_in(file.path(bin, "scancel"), c(
    sprintf('echo "$@" >> %s/scancel.args', dir),
    sprintf('for id; do kill -TERM -$(cat %s/pid.$id); sed -i "/^$id /d" %s/queue; done', dir, dir)))
  old_path <- Sys.getenv("PATH")
  Sys.setenv(PATH = paste(bin, old_path, sep = ":"))
  on.exit({ Sys.setenv(PATH = old_path); unlink(dir, recursive = TRUE) }, add = TRUE)

  script <- file.path(dir, "rank.sh")
  writeLines('echo "rank $PESC_RANK in job ${SLURM_JOB_ID:-none}"', script)
  res <- farm(script, repetitions = 3, progress = FALSE,
              pool = list(partition = "debug", max_workers = 1, slots_per_worker = 2, listen = "127.0.0.1:0",
                          worker = worker, worker_args = "--run-as="))
  expect_equal(res$output, paste0("rank ", 0:2, " in job 101\n", collapse = ""))
  expect_true(all(startsWith(res$ranks$worker, "pilot-session-")))
  expect_equal(readLines(file.path(dir, "scancel.args")), "101")
  expect_error(farm(script, pool = list(max_worker = 2), progress = FALSE), "unknown pool option max_worker")
})
