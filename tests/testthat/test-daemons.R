test_that("script and function mode run against a real coordinator and worker", {
  address <- local_daemons()
  script <- write_script(c('args <- commandArgs(trailingOnly = TRUE)',
                           'cat("rank", args[which(args == "--rank") + 1L], "\\n")'))
  res <- farm(script, repetitions = 4, coordinator = address, progress = FALSE)
  expect_equal(res$output, paste(sprintf("rank %d \n", 0:3), collapse = ""))
  expect_true(all(nzchar(res$ranks$worker)))

  df <- data.frame(x = 1:8)
  f <- function(rank, k) sum(df$x[seq_len(rank + 1)]) * k
  expect_equal(farm(f, repetitions = 3, params = list(k = 2), coordinator = address, progress = FALSE)$values,
               list(2, 6, 12))
  expect_equal(farm_lapply(c(a = 1, b = 4), sqrt, coordinator = address, progress = FALSE), list(a = 1, b = 2))
  err <- tryCatch(farm(function(rank) stop("remote ", rank), 2, coordinator = address, progress = FALSE),
                  error = function(e) e)
  expect_s3_class(err, "pesc_rank_error")
  expect_match(conditionMessage(err), "rank 0 failed: remote 0")
})

test_that("a job outlives its session: farm_attach() picks it up and returns its values", {
  address <- local_daemons()
  job <- farm_submit(function(rank) rank * 10, repetitions = 4, coordinator = address)
  # What another session knows of the job: its id and where it runs.
  attached <- farm_attach(job$id, coordinator = address)
  expect_equal(attached$repetitions, 4)
  expect_equal(farm_wait(attached, progress = FALSE)$values, list(0, 10, 20, 30))

  script <- write_script('cat("rank", Sys.getenv("PESC_RANK"), "\\n")')
  later <- farm_attach(farm_submit(script, repetitions = 2, coordinator = address)$id, coordinator = address)
  expect_equal(farm_wait(later, progress = FALSE)$output, "rank 0 \nrank 1 \n")

  expect_error(farm_attach("", coordinator = address), "one job id")
  expect_error(farm_attach("no-such-job", coordinator = address), "no-such-job")
  withr_unset <- Sys.getenv("PESC_COORDINATOR"); Sys.unsetenv("PESC_COORDINATOR")
  on.exit(if (nzchar(withr_unset)) Sys.setenv(PESC_COORDINATOR = withr_unset), add = TRUE)
  expect_error(farm_attach("abc"), "needs the coordinator")
})
