test_that("a closure over a data frame runs on every rank", {
  make_f <- function(df) function(rank, scale) scale * sum(df$value[df$group == rank])
  df <- data.frame(group = rep(0:3, each = 5), value = 1:20)
  res <- farm(make_f(df), repetitions = 4, params = list(scale = 2), slots = kSlots, progress = FALSE)
  expect_equal(res$values, lapply(0:3, function(r) 2 * sum(df$value[df$group == r])))
  expect_equal(res$ranks$status, rep("succeeded", 4))
})

test_that("globals from the global environment travel, helpers included", {
  assign("pesc_test_offset", 100, envir = globalenv())
  assign("pesc_test_helper", function(x) x + pesc_test_offset, envir = globalenv())
  on.exit(rm(pesc_test_offset, pesc_test_helper, envir = globalenv()))
  f <- function(rank) pesc_test_helper(rank)
  environment(f) <- globalenv()
  expect_equal(unlist(farm(f, repetitions = 3, slots = kSlots, progress = FALSE)$values), c(100, 101, 102))
})

test_that("an error in a rank is an R condition naming the rank, message and call", {
  f <- function(rank) {
    if (rank == 2) stop("no data for this rank")
    rank
  }
  err <- tryCatch(farm(f, repetitions = 4, slots = kSlots, progress = FALSE), error = function(e) e)
  expect_s3_class(err, "pesc_rank_error")
  expect_equal(err$rank, 2L)
  expect_equal(err$remote_message, "no data for this rank")
  expect_match(err$remote_call, "f(rank)", fixed = TRUE)
  expect_match(conditionMessage(err), "rank 2 failed: no data for this rank")
  expect_equal(err$results$ranks$status, c("succeeded", "succeeded", "failed", "succeeded"))
})

test_that("values of every size come back intact, with the ranks' own files", {
  # Small values travel over the runner's pipe; those over 64 KiB are
  # written to output_dir, gzipped.
  sizes <- c(3, 2e4, 4e5)
  f <- function(rank) {
    writeLines(paste("note", rank), file.path(Sys.getenv("PESC_OUTPUT_DIR"), "note.txt"))
    cat("rank", rank, "\n")
    seq_len(sizes[rank %% 3 + 1]) + rank
  }
  res <- farm(f, repetitions = 9, slots = kSlots, progress = FALSE)
  expect_equal(res$values, lapply(0:8, function(r) seq_len(sizes[r %% 3 + 1]) + r))
  for (rank in 0:8) {
    expect_equal(rank_output(res, rank), paste0("rank ", rank, " \n"))
    expect_equal(rank_file(res, rank, "note.txt"), paste0("note ", rank, "\n"))
  }
})

test_that("values come back in rank order when ranks finish out of order", {
  f <- function(rank) {
    Sys.sleep(0.4 * (3 - rank))
    list(rank = rank, finished = as.numeric(Sys.time()))
  }
  res <- farm(f, repetitions = 4, slots = 4, progress = FALSE)
  expect_equal(vapply(res$values, `[[`, numeric(1), "rank"), 0:3)
  finished <- vapply(res$values, `[[`, numeric(1), "finished")
  expect_true(finished[4] < finished[1])
})

test_that("farm_lapply keeps names and order", {
  X <- list(b = 1:3, a = 4:6, c = 7:9)
  out <- farm_lapply(X, function(v, k) sum(v) * k, k = 10, slots = kSlots, progress = FALSE)
  expect_equal(out, lapply(X, function(v) sum(v) * 10))
  expect_equal(farm_lapply(c(3, 1, 2), sqrt, slots = kSlots, progress = FALSE), as.list(sqrt(c(3, 1, 2))))
  expect_equal(farm_lapply(list(), sqrt), list())
})

test_that("objects that cannot travel are refused at submission, by name", {
  con <- file(tempfile(), "w")
  on.exit(close(con))
  writer <- function(rank) writeLines("x", con)
  expect_error(farm(writer, 2, progress = FALSE), "`con` \\(from the function's environment\\) is a connection")
  unused <- function(rank) rank * 2
  expect_equal(farm(unused, 2, slots = kSlots, progress = FALSE)$values, list(0, 2))
  ignore <- function(rank, ...) rank
  environment(ignore) <- globalenv()
  expect_error(farm(ignore, 2, params = list(handle = con), progress = FALSE),
               "argument `handle` is a connection")
  ptr <- methods::new("externalptr")
  expect_error(farm(ignore, 2, params = list(p = list(inner = ptr)), progress = FALSE),
               "argument `p`\\[\\[\"inner\"\\]\\] is an external pointer")
})

test_that("a bootstrap split over ranks matches the sequential computation", {
  skip_if_not_installed("boot")
  statistic <- function(d, i) stats::median(d[i])
  data <- c(12.1, 9.8, 15.3, 11.0, 10.4, 13.7, 8.9, 14.2, 12.8, 11.6)
  one_rank <- function(rank, R) {
    set.seed(1000 + rank)
    boot::boot(data, statistic, R = R)$t[, 1]
  }
  farmed <- farm(one_rank, repetitions = 4, params = list(R = 50), slots = kSlots, progress = FALSE)$values
  sequential <- lapply(0:3, one_rank, R = 50)
  expect_equal(farmed, sequential)
})

test_that("more ranks than R has connections come back", {
  # Each value is read through a connection; they must be closed as they go.
  vals <- farm(function(rank) rank * 2, repetitions = 200, slots = 2, progress = FALSE)$values
  expect_equal(unlist(vals), (0:199) * 2)
})

test_that("waiting with a progress bar returns every rank intact", {
  # The progress package's bar when installed, txtProgressBar otherwise; both
  # write to the console, which this test only silences.
  capture.output(res <- farm(function(rank) rank, repetitions = 5, slots = kSlots), type = "output")
  expect_equal(unlist(res$values), 0:4)
  bar <- pesc:::progress_display(3)
  capture.output({
    for (done in 1:3) bar$show(done)
    bar$close()
  })
  succeed()
})
