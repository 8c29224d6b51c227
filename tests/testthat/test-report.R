# The job's report and timeline: what a user reads after a run.

napping_job <- function(ranks = 4L, ...) {
  script <- write_script("sleep 0.3", ext = ".sh")
  farm(script, repetitions = ranks, slots = kSlots, progress = FALSE, ...)
}

test_that("summary() gives speedup, slots and where the time went", {
  s <- summary(napping_job())
  expect_s3_class(s, "summary.pesc_results")
  expect_equal(s$succeeded, 4L)
  expect_equal(s$slots, 2L)
  expect_gte(s$wall, 0.6)
  expect_gt(s$speedup, 1.4)
  expect_lte(s$speedup, 2)
  expect_equal(s$efficiency, s$speedup / 2)
  # The lost slot-time is the capacity the ranks left unused, split into its parts.
  expect_equal(sum(s$lost), s$slots * s$wall - s$rank_time, tolerance = 1e-9)
  expect_equal(sum(s$workers$ranks), 4L)
  expect_true(all(s$workers$max_rank_time >= 0.3))
  expect_equal(nrow(s$timeline), 4L)
  expect_output(print(s), "speedup")
})

test_that("plot() draws a bar per rank and timeline_svg() writes the same picture as SVG", {
  res <- napping_job(5L)
  png_file <- tempfile(fileext = ".png")
  grDevices::png(png_file)
  bars <- plot(res)
  grDevices::dev.off()
  expect_equal(nrow(bars), 5L)
  expect_setequal(bars$rank, 0:4)
  expect_gt(file.size(png_file), 1000)
  svg_file <- tempfile(fileext = ".svg")
  timeline_svg(res, svg_file)
  svg <- paste(readLines(svg_file), collapse = "\n")
  expect_match(svg, "^<svg ")
  expect_equal(lengths(regmatches(svg, gregexpr("<title>rank ", svg))), 5L)
})

test_that("a report over real daemons names their worker", {
  address <- local_daemons()
  s <- summary(napping_job(coordinator = address))
  expect_equal(s$slots, 2L)
  expect_match(s$text, s$workers$worker[[1]], fixed = TRUE)
})
