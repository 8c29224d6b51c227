# foreach's %dopar% on the farm through register_farm() (Debian 12 has no
# doFuture to run it on pesc_farm futures).

local_farm_backend <- function(..., env = parent.frame()) {
  skip_if_not_installed("foreach")
  register_farm(...)
  withr::defer(foreach::registerDoSEQ(), envir = env)
}

expect_foreach_works <- function() {
  `%dopar%` <- foreach::`%dopar%`
  k <- 10
  expect_equal(foreach::foreach(i = 1:6, j = 11:16, .combine = c) %dopar% (i * j + k), (1:6) * (11:16) + k)
  in_function <- function(n) {
    m <- 3
    foreach::foreach(i = seq_len(n)) %dopar% (i * m)
  }
  expect_equal(in_function(3), list(3, 6, 9))
  expect_error(foreach::foreach(i = 1:3) %dopar% if (i == 2) stop("bad ", i) else i, "task 2 failed - \"bad 2\"")
  expect_equal(foreach::foreach(i = 1:3, .errorhandling = "remove", .combine = c) %dopar%
                 if (i == 2) stop("bad ", i) else i, c(1, 3))
  expect_equal(foreach::foreach(i = 1:2, .packages = "tools") %dopar% file_ext(paste0("a.", i)), list("1", "2"))
}

test_that("foreach %dopar% runs on the embedded farm, in order, with errors handled as asked", {
  local_farm_backend(slots = kSlots)
  expect_equal(foreach::getDoParName(), "pesc")
  expect_equal(foreach::getDoParWorkers(), kSlots)
  expect_foreach_works()
  expect_error(register_farm(lab = list(retries = 1)), "unknown option retries")
})

test_that("foreach %dopar% runs on a coordinator and its worker", {
  address <- local_daemons()
  local_farm_backend(coordinator = address, lab = list(max_attempts = 2))
  expect_foreach_works()
})
