rank_script <- c(
  'args <- commandArgs(trailingOnly = TRUE)',
  'rank <- as.integer(args[which(args == "--rank") + 1L])',
  'world <- as.integer(args[which(args == "--world_size") + 1L])',
  'params <- args[-seq_len(which(args == "--parameters"))]',
  'cat(sprintf("rank %d of %d: %s\\n", rank, world, paste(params, collapse = " ")))',
  'writeLines(as.character(rank * 10), file.path(Sys.getenv("PESC_OUTPUT_DIR"), "value.txt"))')

test_that("a script reads its rank from commandArgs and output comes back in rank order", {
  script <- write_script(rank_script)
  res <- farm(script, repetitions = 5, params = c(3, 0.5), slots = kSlots, progress = FALSE)
  expect_s3_class(res, "pesc_results")
  expected <- sprintf("rank %d of 5: 3 0.5\n", 0:4)
  expect_equal(res$output, paste(expected, collapse = ""))
  expect_equal(rank_output(res, 3), expected[4])
  expect_equal(res$ranks$rank, 0:4)
  expect_true(all(res$ranks$status == "succeeded"))
  expect_true(all(res$ranks$exit_code == 0L))
  expect_named(res$ranks, c("rank", "status", "exit_code", "signal", "worker", "start", "end", "duration",
                            "cpu_time", "max_rss_kb", "error", "limit_exceeded", "failure_class", "left_out"))
  expect_s3_class(res$ranks$start, "POSIXct")
  expect_equal(trimws(rank_file(res, 2, "value.txt")), "20")
  expect_null(rank_file(res, 2, "missing.txt"))
  expect_error(rank_output(res, 5), "from 0 to 4")
  expect_output(print(res), "5 succeeded")
  expect_output(print(summary(res)), "5 ranks")
})

test_that("farm_submit, farm_wait and farm_save work apart", {
  script <- write_script(rank_script)
  job <- farm_submit(script, repetitions = 3, slots = kSlots)
  expect_s3_class(job, "pesc_job")
  expect_output(print(job), "3 ranks")
  res <- farm_wait(job, progress = FALSE)
  dir <- tempfile()
  farm_save(res, dir)
  expect_true(file.exists(file.path(dir, "rank_2", "value.txt")))
  expect_equal(paste(readLines(file.path(dir, "output.txt")), collapse = "\n"),
               sub("\n$", "", res$output))
})

test_that("a failing script is a failed rank, not an R error", {
  script <- write_script(c('rank <- as.integer(Sys.getenv("PESC_RANK"))', 'if (rank == 1) quit(status = 3)',
                           'cat("ok", rank, "\\n")'))
  res <- farm(script, repetitions = 3, slots = kSlots, progress = FALSE)
  expect_equal(res$ranks$status, c("succeeded", "failed", "succeeded"))
  expect_equal(res$ranks$exit_code[2], 3L)
})

test_that("bad arguments are clear R errors", {
  expect_error(farm(tempfile(fileext = ".R"), 2, progress = FALSE), "no such file")
  expect_error(farm(write_script("1"), 0, progress = FALSE), "positive whole number")
  expect_error(farm(write_script("1"), 2, coordinator = "127.0.0.1:1", progress = FALSE), "pesc \\[")
})

test_that("the domain is inferred from the file name, as the CLI infers it", {
  expect_equal(pesc:::.pesc_domain_for_file("sim.r"), "R")
  expect_equal(pesc:::.pesc_domain_for_file("sim.R"), "R")
  expect_equal(pesc:::.pesc_domain_for_file("sim.py"), "python")
  expect_equal(pesc:::.pesc_domain_for_file("a.out"), "native")
  script <- write_script('echo "from sh $PESC_RANK"', ext = ".sh")
  res <- farm(script, repetitions = 2, slots = kSlots, progress = FALSE)
  expect_equal(res$output, "from sh 0\nfrom sh 1\n")
})

test_that("lab options reach the farm: retries and shared files", {
  dir <- withr::local_tempdir()
  writeLines("shared bytes", file.path(dir, "data.txt"))
  counts <- file.path(dir, "counts")
  dir.create(counts)
  script <- file.path(dir, "flaky.sh")
  writeLines(c('f="$PESC_PARAMETER_0/$PESC_RANK"; echo x >> "$f"',
               'if [ "$PESC_RANK" = 1 ] && [ "$(wc -l < "$f")" -le 1 ]; then exit 3; fi',
               "cat data.txt"), script)
  res <- farm(script, repetitions = 2, params = counts, slots = 2, progress = FALSE,
              lab = list(max_attempts = 2, shared = file.path(dir, "data.txt")))
  expect_equal(res$output, "shared bytes\nshared bytes\n")
  expect_error(farm(script, repetitions = 1, progress = FALSE, lab = list(retries = 2)),
               "unknown option retries")
})

test_that("per-rank limits kill a rank and say which", {
  dir <- withr::local_tempdir()
  hog <- file.path(dir, "hog.sh")
  writeLines("exec /usr/bin/python3 -c \"import time; b = b'x' * (256 << 20); time.sleep(5)\"", hog)
  res <- farm(hog, repetitions = 1, progress = FALSE, lab = list(memory = "64M", processes = 32))
  expect_equal(res$ranks$limit_exceeded, "memory")
  expect_match(rank_output(res, 0), "memory limit of 64 MiB")
  spill <- file.path(dir, "spill.sh")
  writeLines('head -c 3000000 /dev/zero > "$PESC_OUTPUT_DIR/big"', spill)
  res <- farm(spill, repetitions = 1, progress = FALSE, lab = list(output_size = 2^20, cpu_time = 10))
  expect_equal(res$ranks$limit_exceeded, "output")
  expect_error(farm(spill, repetitions = 1, progress = FALSE, lab = list(memory = "lots")), "not a size")
})

test_that("a job whose program cannot execute stops with the reason, in seconds", {
  dir <- tempfile()
  dir.create(dir)
  writeLines("echo never", file.path(dir, "prog"))  # no #! line
  Sys.chmod(file.path(dir, "prog"), "755")
  archive <- file.path(dir, "app.tar")
  expect_equal(system2("tar", c("-C", dir, "-cf", archive, "prog")), 0L)
  started <- Sys.time()
  expect_error(farm(archive, repetitions = 20, domain = "native", entry = "prog", slots = kSlots, progress = FALSE),
               "failed: .*#!")
  expect_lt(as.numeric(difftime(Sys.time(), started, units = "secs")), 15)
})

test_that("each failed rank says whose fault it was", {
  script <- write_script(c('if (Sys.getenv("PESC_RANK") == "1") quit(status = 3)'))
  res <- farm(script, repetitions = 2, slots = kSlots, progress = FALSE)
  expect_equal(res$ranks$failure_class, c("", "rank"))
})
