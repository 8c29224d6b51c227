test_that("an interrupt cancels the job: no rank keeps running and the session stays usable", {
  skip_on_os("windows")
  dir <- tempfile("pesc-interrupt-")
  dir.create(file.path(dir, "ranks"), recursive = TRUE)
  child <- file.path(dir, "child.R")
  writeLines(c(
    "library(pesc)",
    sprintf("dir <- %s", deparse(dir)),
    "writeLines(as.character(Sys.getpid()), file.path(dir, 'child.pid'))",
    "rank_dirs <- file.path(dir, 'ranks')",
    "f <- function(rank) {",
    "  writeLines(as.character(Sys.getpid()), file.path(rank_dirs, rank))",
    "  Sys.sleep(120)",
    "}",
    "outcome <- tryCatch(farm(f, repetitions = 4, slots = 2, progress = FALSE),",
    "                    interrupt = function(e) 'interrupted')",
    "writeLines(c(outcome, as.character(1 + 1)), file.path(dir, 'after.txt'))"), child)
  rscript <- file.path(R.home("bin"), "Rscript")
  libs <- paste(.libPaths(), collapse = .Platform$path.sep)
  pid <- spawn("env", c(paste0("R_LIBS=", libs), rscript, child), file.path(dir, "child.log"))
  on.exit({
    tools::pskill(pid, tools::SIGKILL)
    unlink(dir, recursive = TRUE)
  })
  wait_until(function() length(list.files(file.path(dir, "ranks"))) == 2L, 60, "two ranks to start")
  rank_pids <- as.integer(vapply(list.files(file.path(dir, "ranks"), full.names = TRUE), readLines, ""))
  expect_true(all(vapply(rank_pids, process_alive, logical(1))))
  child_pid <- as.integer(readLines(file.path(dir, "child.pid")))
  tools::pskill(child_pid, tools::SIGINT)
  wait_until(function() file.exists(file.path(dir, "after.txt")), 30,
             paste("the interrupted session to go on:", paste(readLines(file.path(dir, "child.log")),
                                                             collapse = "\n")))
  expect_equal(readLines(file.path(dir, "after.txt")), c("interrupted", "2"))
  # The session says whether the farm confirmed the cancel.
  expect_match(paste(readLines(file.path(dir, "child.log")), collapse = "\n"), "pesc: cancelled job ")
  wait_until(function() !any(vapply(rank_pids, process_alive, logical(1))), 15, "the ranks to stop")
  expect_false(any(vapply(rank_pids, process_alive, logical(1))))
  expect_lte(length(list.files(file.path(dir, "ranks"))), 2L)
})
