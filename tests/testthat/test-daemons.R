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

test_that("a parallel job's ranks meet rank 0 over TCP at MASTER_ADDR and MASTER_PORT", {
  address <- local_daemons()
  meet <- function(rank) {
    host <- Sys.getenv("MASTER_ADDR")
    port <- as.integer(Sys.getenv("MASTER_PORT"))
    if (rank == 0L) {
      connection <- socketConnection(host, port, server = TRUE, blocking = TRUE, open = "r", timeout = 30)
      on.exit(close(connection))
      return(as.integer(readLines(connection, n = 1L)))
    }
    for (try in 1:200) {
      connection <- tryCatch(suppressWarnings(socketConnection(host, port, blocking = TRUE, open = "w", timeout = 5)),
                             error = function(e) NULL)
      if (!is.null(connection)) break
      Sys.sleep(0.05)  # rank 0 is not listening yet
    }
    writeLines(as.character(rank), connection)
    close(connection)
    rank
  }
  for (where in list(NULL, address)) {
    values <- farm(meet, repetitions = 2, coordinator = where, progress = FALSE, lab = list(parallel = TRUE))$values
    expect_equal(values, list(1L, 1L))
  }
  expect_error(farm(function(rank) rank, 1, coordinator = address, progress = FALSE, lab = list(min_capability = 8)),
               "GPUs per rank")
})
