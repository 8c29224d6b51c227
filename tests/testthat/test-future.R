# The future backend against the embedded farm and against real daemons:
# future itself, future.apply and furrr run unchanged on plan(pesc_farm).

local_pesc_plan <- function(..., env = parent.frame()) {
  skip_if_not_installed("future")
  old <- future::plan(pesc::pesc_farm, ...)
  withr::defer(future::plan(old), envir = env)
}

expect_futures_work <- function() {
  scale <- 3
  f <- future::future({
    cat("printed remotely\n")
    message("a message")
    warning("a warning")
    scale * 2
  })
  expect_output(expect_message(expect_warning(value <- future::value(f), "a warning"), "a message"),
                "printed remotely")
  expect_equal(value, 6)

  failing <- future::future(stop("remote failure ", scale))
  expect_error(future::value(failing), "remote failure 3")

  skip_if_not_installed("future.apply")
  expect_equal(future.apply::future_lapply(1:25, function(x) x * scale), as.list((1:25) * scale))
  expect_equal(future.apply::future_sapply(c(a = 1, b = 2), function(x) x + 1), c(a = 2, b = 3))
  expect_error(future.apply::future_lapply(1:6, function(x) if (x == 4) stop("bad element ", x) else x),
               "bad element 4")
  # Packages future finds in the expression are loaded on the worker.
  expect_equal(future.apply::future_sapply(1:3, function(x) tools::file_ext(paste0("f.", x))), c("1", "2", "3"))

  skip_if_not_installed("furrr")
  expect_equal(furrr::future_map(1:10, function(x) x^2), as.list((1:10)^2))
  expect_equal(furrr::future_map2_dbl(1:4, 5:8, function(x, y) x * y + scale), (1:4) * (5:8) + scale)
}

test_that("futures on the embedded farm: values in order, output and conditions relayed, errors raised", {
  local_pesc_plan(slots = kSlots)
  expect_equal(future::nbrOfWorkers(), kSlots)
  expect_futures_work()
})

test_that("futures on a coordinator and its worker", {
  address <- local_daemons()
  local_pesc_plan(coordinator = address, workers = 3, lab = list(max_attempts = 2))
  expect_equal(future::nbrOfWorkers(), 3)
  expect_futures_work()
})

test_that("plan options: tweak, workers, lazy futures, and a rank that dies is a FutureError", {
  skip_if_not_installed("future")
  strategy <- future::tweak(pesc::pesc_farm, slots = 1, workers = 5)
  expect_s3_class(strategy, "pesc_farm")
  old <- future::plan(strategy)
  withr::defer(future::plan(old))
  expect_equal(future::nbrOfWorkers(), 5)
  expect_equal(future::nbrOfFreeWorkers(), 5)
  f <- future::future(42, lazy = TRUE)
  expect_false(future::resolved(f, run = FALSE))
  expect_equal(future::value(f), 42)

  crash <- future::future(quit(save = "no", status = 7))
  expect_error(future::value(crash), class = "FutureError")
  future::plan(pesc::pesc_farm, lab = list(retries = 2))
  expect_error(future::future(1), "unknown option retries")
})
