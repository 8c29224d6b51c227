#!/usr/bin/env Rscript
# The future backend's overhead: future_lapply on plan(pesc::pesc_farm)
# against farm_lapply and against plan(multisession), in one run.
#
#   Rscript benchmarks/r/future_backend.R [calls=200] [rounds=3] [single_calls=20]
#
# PESC_R_LIBRARY: the library pesc is installed in (default: R's own).
# Every contender makes `calls` no-op calls (future_lapply on pesc_farm with
# future.chunk.size = 1: `single_calls`, a job each) on 2 slots / workers,
# on the embedded farm; the figure is wall seconds from the call to the
# values in hand, the median over rounds (min..max), each round running
# every contender back to back; the last column is per call. The multisession workers start before timing (a
# warm-up); pesc's warm R processes live for one job, so each job pays
# their start: future_lapply's default chunking makes 2 futures (2 jobs),
# future.chunk.size = 1 makes one future, so one job, per call.

suppressPackageStartupMessages({
  lib <- Sys.getenv("PESC_R_LIBRARY")
  library(pesc, lib.loc = if (nzchar(lib)) lib else NULL)
  library(future)
  library(future.apply)
})
args <- commandArgs(trailingOnly = TRUE)
calls <- if (length(args) >= 1) as.integer(args[[1]]) else 200L
rounds <- if (length(args) >= 2) as.integer(args[[2]]) else 3L
single_calls <- if (length(args) >= 3) as.integer(args[[3]]) else 20L
Sys.unsetenv("PESC_COORDINATOR")

noop <- function(x) NULL
seconds <- function(run, n) {
  start <- proc.time()[["elapsed"]]
  values <- run(n)
  stopifnot(length(values) == n)
  proc.time()[["elapsed"]] - start
}
on_plan <- function(strategy, ...) {
  force(strategy)
  options <- list(...)
  function(run) function(n) {
    old <- do.call(plan, c(list(strategy), options))
    on.exit(plan(old))
    run(n)
  }
}
pesc_plan <- on_plan(pesc::pesc_farm, slots = 2L)
multisession_plan <- function(run) run  # set once, below: its workers outlive a plan() call
by_chunks <- function(n) future_lapply(seq_len(n), noop)
one_each <- function(n) future_lapply(seq_len(n), noop, future.chunk.size = 1)
contenders <- list(
  "farm_lapply (one job, a rank per call)" = function(n) farm_lapply(seq_len(n), noop, slots = 2L, progress = FALSE),
  "future_lapply on pesc_farm (default chunks)" = pesc_plan(by_chunks),
  "future_lapply on pesc_farm (future.chunk.size = 1)" = pesc_plan(one_each),
  "future_lapply on multisession (default chunks)" = multisession_plan(by_chunks),
  "future_lapply on multisession (future.chunk.size = 1)" = multisession_plan(one_each)
)
counts <- ifelse(names(contenders) == "future_lapply on pesc_farm (future.chunk.size = 1)", single_calls, calls)
names(counts) <- names(contenders)

run_round <- function() {
  vapply(names(contenders), function(name) {
    if (grepl("multisession", name)) plan(multisession, workers = 2L) else plan(sequential)
    seconds(contenders[[name]], counts[[name]])
  }, numeric(1))
}

cat(sprintf("%s; pesc %s; future %s; future.apply %s; 2 slots/workers\n", R.version.string,
            packageVersion("pesc"), packageVersion("future"), packageVersion("future.apply")))
cat("uptime:", system("uptime", intern = TRUE), "\n")
plan(multisession, workers = 2L)
invisible(future_lapply(1:4, noop))  # starts the multisession workers
samples <- do.call(rbind, lapply(seq_len(rounds), function(round) {
  s <- run_round()
  cat(sprintf("round %d: %s\n", round, paste(sprintf("%.2f s", s), collapse = ", ")))
  s
}))
plan(sequential)
median_of <- apply(samples, 2, stats::median)
per_call <- median_of / counts[names(median_of)]
base <- per_call[["farm_lapply (one job, a rank per call)"]]
cat(sprintf("\n| contender | calls | seconds, median of %d (min..max) | ms per call | per call / farm_lapply |\n",
            rounds))
cat("|---|---|---|---|---|\n")
for (name in colnames(samples)) {
  cat(sprintf("| %s | %d | %.2f (%.2f..%.2f) | %.1f | %.2f |\n", name, counts[[name]], median_of[[name]],
              min(samples[, name]), max(samples[, name]), 1000 * per_call[[name]], per_call[[name]] / base))
}
