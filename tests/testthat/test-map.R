test_that("farm_lapply passes lab options to the farm: retries and shared files", {
  dir <- withr::local_tempdir()
  writeLines("shared line", file.path(dir, "data.txt"))
  attempts <- file.path(dir, "attempts")
  dir.create(attempts)
  flaky <- function(x) {
    mark <- file.path(attempts, x)
    first <- !file.exists(mark)
    file.create(mark)
    if (x == "b" && first) stop("first attempt of ", x)
    paste(x, readLines(file.path(Sys.getenv("PESC_APP_DIR"), "data.txt")))
  }
  values <- farm_lapply(c(one = "a", two = "b"), flaky, slots = kSlots, progress = FALSE,
                        lab = list(max_attempts = 2, shared = file.path(dir, "data.txt")))
  expect_equal(values, list(one = "a shared line", two = "b shared line"))
  expect_error(farm_lapply(1:2, identity, progress = FALSE, lab = list(retries = 2)), "unknown option retries")
})

test_that("farm_map maps over several vectors in order, with constant arguments by name", {
  offset <- 100
  f <- function(x, y, power) (x + y)^power + offset
  expect_equal(farm_map(f, x = 1:5, y = c(a = 10, b = 20, c = 30, d = 40, e = 50), const = list(power = 2),
                        slots = kSlots, progress = FALSE),
               as.list((1:5 + 10 * 1:5)^2 + offset))
  # Positional vectors and a list of data frames; names of the first vector kept.
  frames <- list(data.frame(v = 1:2), data.frame(v = 3:6))
  expect_equal(farm_map(function(label, d) paste(label, sum(d$v)), c(p = "x", q = "y"), frames,
                        slots = kSlots, progress = FALSE),
               list(p = "x 3", q = "y 18"))
  expect_equal(farm_map(function(x) x, x = integer()), list())
  expect_error(farm_map(f, x = 1:3, y = 1:2), "one length, not 3, 2")
  expect_error(farm_map(f), "at least one vector")
  err <- tryCatch(farm_map(function(x, y) if (y > 1) stop("too big: ", y) else x, x = 1:3, y = 1:3,
                           slots = kSlots, progress = FALSE),
                  error = function(e) e)
  expect_s3_class(err, "pesc_rank_error")
  expect_equal(err$rank, 1L)
  expect_match(conditionMessage(err), "too big: 2")
  expect_match(err$remote_call, "^\\.f\\(x = \\.v1, y = \\.v2\\)$")
})

test_that("rank_file gives an .rds file's object, a binary file's bytes and a text file's text", {
  keep <- function(rank) {
    out <- Sys.getenv("PESC_OUTPUT_DIR")
    saveRDS(data.frame(rank = rank, label = "r"), file.path(out, "frame.rds"))
    saveRDS(list(rank = rank), file.path(out, "small.rds"), compress = "xz")
    writeBin(as.raw(c(0:3, 255)), file.path(out, "bytes.bin"))
    writeBin(as.raw(c(0x41, 0xff, 0x42)), file.path(out, "latin.dat"))  # no NUL, not UTF-8
    writeLines(c("first", "zw\u00f6lf"), file.path(out, "note.txt"), useBytes = TRUE)
    rank
  }
  res <- farm(keep, repetitions = 2, slots = kSlots, progress = FALSE)
  expect_equal(rank_file(res, 1, "frame.rds"), data.frame(rank = 1L, label = "r"))
  expect_equal(rank_file(res, 0, "small.rds"), list(rank = 0L))
  expect_identical(rank_file(res, 1, "bytes.bin"), as.raw(c(0:3, 255)))
  expect_identical(rank_file(res, 1, "latin.dat"), as.raw(c(0x41, 0xff, 0x42)))
  expect_identical(rank_file(res, 0, "note.txt"), "first\nzw\u00f6lf\n")
  expect_identical(rank_file(res, 0, "note.txt", raw = TRUE), charToRaw("first\nzw\u00f6lf\n"))
  expect_true(is.raw(rank_file(res, 0, "frame.rds", raw = TRUE)))
  expect_null(rank_file(res, 0, "absent.txt"))
})

test_that("lab = list(notify = ...) reaches the farm, which says what a target needs", {
  expect_error(farm_lapply(1:2, identity, slots = kSlots, progress = FALSE,
                           lab = list(notify = "mailto:ada@lab.example")), "--smtp-url")
  expect_error(farm_lapply(1:2, identity, slots = kSlots, progress = FALSE, lab = list(notify = "ftp://x/y")),
               "neither mailto")
})
