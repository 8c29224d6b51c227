# farm(..., pool = ...): a session whose ranks run on batch-system pilots.
# sbatch, squeue and scancel are stand-ins (tests/data/slurm_stand_ins,
# first on PATH) that start this build's pesc-worker; the real Slurm is
# tests/slurm/test_slurm_session.py's.

test_that("a farm with a pool runs its ranks on pilots and cancels them when it returns", {
  build <- Sys.getenv("PESC_BUILD")
  skip_if(!nzchar(build), "PESC_BUILD is unset: set it to a build directory with daemons/")
  worker <- file.path(build, "daemons", "pesc-worker")
  skip_if(!file.exists(worker), paste("no", worker))
  stand_ins <- normalizePath(test_path("..", "data", "slurm_stand_ins"), mustWork = FALSE)
  skip_if(!dir.exists(stand_ins), "no tests/data/slurm_stand_ins (a source checkout has them)")
  dir <- tempfile("pesc-pool-")
  dir.create(dir)
  old_path <- Sys.getenv("PATH")
  Sys.setenv(PATH = paste(stand_ins, old_path, sep = ":"), PESC_BATCH_DIR = dir)
  on.exit({ Sys.setenv(PATH = old_path); Sys.unsetenv("PESC_BATCH_DIR"); unlink(dir, recursive = TRUE) }, add = TRUE)

  script <- file.path(dir, "rank.sh")
  writeLines('echo "rank $PESC_RANK in job ${SLURM_JOB_ID:-none}"', script)
  res <- farm(script, repetitions = 3, progress = FALSE,
              pool = list(partition = "debug", max_workers = 1, slots_per_worker = 2, listen = "127.0.0.1:0",
                          worker = worker, worker_args = "--run-as="))
  expect_equal(res$output, paste0("rank ", 0:2, " in job 101\n", collapse = ""))
  expect_true(all(startsWith(res$ranks$worker, "pilot-session-")))
  expect_equal(readLines(file.path(dir, "scancel.args")), "101")
  expect_error(farm(script, pool = list(max_worker = 2), progress = FALSE), "unknown pool option max_worker")

  # The one-call helpers take a pool too, and end its session when they return.
  unlink(file.path(dir, "scancel.args"))
  pool <- list(partition = "debug", max_workers = 1, slots_per_worker = 2, listen = "127.0.0.1:0",
               worker = worker, worker_args = "--run-as=")
  expect_equal(farm_lapply(list(a = 4, b = 9), sqrt, pool = pool, progress = FALSE), list(a = 2, b = 3))
  expect_true(file.exists(file.path(dir, "scancel.args")))
})
