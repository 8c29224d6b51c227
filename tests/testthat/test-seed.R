# seed =: rank r draws from L'Ecuyer-CMRG stream r of the seed, the one
# future.apply's future.seed gives element r + 1, whatever runs the rank.

# What element i of future_lapply(..., future.seed = seed) starts from.
expected_draws <- function(n, seed, draw = function() runif(2)) {
  old_kind <- RNGkind()[1]
  on.exit(RNGkind(old_kind))
  RNGkind("L'Ecuyer-CMRG")
  set.seed(seed)
  stream <- .Random.seed
  lapply(seq_len(n), function(i) {
    assign(".Random.seed", parallel::nextRNGSubStream(stream), envir = globalenv())
    stream <<- parallel::nextRNGStream(stream)
    draw()
  })
}

test_that("each rank has its own stream, the same on one slot or three", {
  draw <- function(rank) runif(2)
  one <- farm(draw, repetitions = 8, seed = 42, slots = 1, progress = FALSE)$values
  three <- farm(draw, repetitions = 8, seed = 42, slots = 3, progress = FALSE)$values
  expect_equal(one, expected_draws(8, 42))
  expect_equal(three, one)
  expect_length(unique(one), 8)
  expect_false(identical(farm(draw, repetitions = 2, seed = 43, progress = FALSE)$values, one[1:2]))
})

test_that("farm_lapply and farm_map draw as future_lapply with future.seed does", {
  skip_if_not_installed("future.apply")
  expect_equal(farm_lapply(1:5, function(x) rnorm(1) + x, seed = 7, slots = 2, progress = FALSE),
               future.apply::future_lapply(1:5, function(x) rnorm(1) + x, future.seed = 7))
  expect_equal(farm_map(function(a, b) a + runif(1), a = 1:3, b = 4:6, lab = list(seed = 7), progress = FALSE),
               expected_draws(3, 7, function() runif(1)) |> Map(f = `+`, 1:3) |> unname())
})

test_that("a retried rank draws the same numbers, also on real daemons", {
  address <- local_daemons()
  marks <- withr::local_tempdir()
  flaky <- function(rank) {
    x <- runif(1)
    mark <- file.path(marks, rank)
    if (rank == 1 && !file.exists(mark)) {
      file.create(mark)
      stop("first attempt fails")
    }
    x
  }
  res <- farm(flaky, repetitions = 3, seed = 5, coordinator = address, progress = FALSE,
              lab = list(max_attempts = 2))
  expect_equal(res$values, expected_draws(3, 5, function() runif(1)))
})

test_that("scripts get PESC_SEED and a bad seed is refused", {
  script <- write_script('cat(Sys.getenv("PESC_SEED", "none"), "\\n")')
  expect_equal(farm(script, repetitions = 1, seed = 9, progress = FALSE)$output, "9 \n")
  for (bad in list(-1, 1.5, 2^31, "1", c(1, 2), NA)) {
    expect_error(farm(identity, repetitions = 1, seed = bad, progress = FALSE), "`seed` must be a whole number")
  }
})
