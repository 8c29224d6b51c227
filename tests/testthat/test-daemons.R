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
