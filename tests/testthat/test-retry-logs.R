# farm_retry(): only the failed ranks run again and the results stay one set
# in rank order; farm_logs(): a slow rank's lines show before it ends. On the
# embedded farm and on real daemons.

flaky_script <- function(marker) {
  write_script(c(sprintf('fixed <- file.exists("%s")', marker),
                 'rank <- Sys.getenv("PESC_RANK")',
                 'cat("rank", rank, "caf\\u00e9\\n")',
                 'if (rank %in% c("2", "5") && !fixed) quit(status = 3)'))
}

expect_retry_reruns_only_the_failed <- function(coordinator) {
  marker <- tempfile("fixed-")
  first <- farm(flaky_script(marker), repetitions = 8, coordinator = coordinator, slots = kSlots,
                progress = FALSE)
  expect_equal(first$ranks$rank[first$ranks$status != "succeeded"], c(2L, 5L))
  file.create(marker)
  again <- farm_retry(first, progress = FALSE)
  expect_equal(again$job_id, first$job_id)
  expect_equal(again$ranks$rank, 0:7)
  expect_true(all(again$ranks$status == "succeeded"))
  expect_equal(again$output, paste(sprintf("rank %d caf\u00e9\n", 0:7), collapse = ""))
  expect_equal(again$ranks$start[1], first$ranks$start[1], info = "a rank that succeeded did not run again")

  err <- tryCatch(farm_retry(again, progress = FALSE), error = function(e) e)
  expect_match(conditionMessage(err), "failed_precondition.*nothing to retry")
  expect_error(farm_retry(again, ranks = 8, progress = FALSE), "out_of_range.*no rank 8")
  named <- farm_retry(again, ranks = c(0, 7), progress = FALSE)
  expect_true(all(named$ranks$status == "succeeded"))
  expect_false(identical(named$ranks$start[1], first$ranks$start[1]), info = "a rank named runs again")
}

test_that("farm_retry reruns only the failed ranks on the embedded farm", {
  expect_retry_reruns_only_the_failed(NULL)
})

test_that("farm_retry reruns only the failed ranks on real daemons", {
  expect_retry_reruns_only_the_failed(local_daemons())
})

test_that("farm_retry takes a function-mode job's error and gives every value", {
  marker <- tempfile("fixed-")
  f <- function(rank, marker) if (rank == 1 && !file.exists(marker)) stop("not fixed") else rank * 10
  err <- tryCatch(farm(f, repetitions = 3, params = list(marker = marker), slots = kSlots, progress = FALSE),
                  error = function(e) e)
  expect_s3_class(err, "pesc_rank_error")
  file.create(marker)
  expect_equal(farm_retry(err, progress = FALSE)$values, list(0, 10, 20))
})

expect_logs_follow_a_slow_rank <- function(coordinator) {
  release <- tempfile("release-")
  script <- write_script(c('echo "first of $PESC_RANK"',
                           sprintf('while [ ! -e "%s" ]; do sleep 0.05; done', release),
                           'echo "last of $PESC_RANK"'), ext = ".sh")
  job <- farm_submit(script, repetitions = 1, coordinator = coordinator, slots = kSlots)
  pieces <- character()
  seen_while_running <- FALSE
  text <- farm_logs(job, 0, callback = function(piece) {
    pieces <<- c(pieces, piece)
    if (grepl("first of 0", paste(pieces, collapse = "")) && !file.exists(release)) {
      seen_while_running <<- TRUE
      file.create(release)  # only now may the rank end
    }
  })
  expect_true(seen_while_running)
  expect_equal(text, "first of 0\nlast of 0\n")
  expect_equal(farm_wait(job, progress = FALSE)$output, text)
  expect_equal(farm_logs(job, 0, follow = FALSE, callback = function(piece) NULL), text)
  expect_error(farm_logs(job, 1), "out_of_range")
}

test_that("farm_logs shows a slow rank's lines before it ends on the embedded farm", {
  expect_logs_follow_a_slow_rank(NULL)
})

test_that("farm_logs shows a slow rank's lines before it ends on real daemons", {
  expect_logs_follow_a_slow_rank(local_daemons())
})
