#!/usr/bin/env Rscript
# pesc::farm function mode against parallel and future.apply, in one run.
#
#   Rscript benchmarks/r/function_mode.R [ranks] [rounds] [future_ranks]
#
# PESC_R_LIBRARY: the library pesc is installed in (default
# /work/main/build/r-library); PESC_DAEMONS: where pesc-coordinator and
# pesc-worker are (default build/daemons of this checkout).
#
# Defaults: 2000 ranks, 3 rounds, 200 elements for future_lapply with one
# element per future (it manages about 35/s; its count is printed). Every
# figure is ranks (elements) per second, wall clock from the call to the
# values in hand, 2 workers / slots each. Each round runs every contender back
# to back, so a loaded machine hits them alike; the table shows the median
# over rounds (and min..max).
#
# Contenders:
#   pesc embedded       farm(f, repetitions = N, slots = 2): coordinator and
#                       worker inside this R process, created per call (the
#                       R API has no farm object to keep)
#   pesc loopback       farm(f, N, coordinator = ADDR) against pesc-coordinator
#                       and pesc-worker --slots 2 on 127.0.0.1, started and
#                       stopped here in temporary directories
#   mclapply            parallel::mclapply(mc.cores = 2), prescheduled (2 forks)
#                       and mc.preschedule = FALSE (one fork per element)
#   parLapply           on makeCluster(2) (PSOCK): one chunk per worker
#   parLapplyLB         the same cluster, chunk.size = 1: one element per
#                       message, the fair comparison with pesc's one rank per
#                       element
#   future_lapply       plan(multisession, workers = 2): default chunking (one
#                       future per worker) and future.chunk.size = 1
# Cluster and daemon start-up are not measured (each contender runs a warm-up
# first); a pesc job still pays its warm R processes' start, since they live
# for one job.

suppressPackageStartupMessages({
  library(pesc, lib.loc = Sys.getenv("PESC_R_LIBRARY", "/work/main/build/r-library"))
  library(parallel)
})
have_future <- requireNamespace("future.apply", quietly = TRUE)

args <- commandArgs(trailingOnly = TRUE)
ranks <- if (length(args) >= 1) as.integer(args[[1]]) else 2000L
rounds <- if (length(args) >= 2) as.integer(args[[2]]) else 3L
future_ranks <- if (length(args) >= 3) as.integer(args[[3]]) else 200L
Sys.unsetenv("PESC_COORDINATOR")

repo <- normalizePath(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                                "..", ".."))
daemons_dir <- Sys.getenv("PESC_DAEMONS", file.path(repo, "build", "daemons"))

noop <- function(rank) NULL

elapsed <- function() proc.time()[["elapsed"]]
rate <- function(n, expr_fn) {
  t <- elapsed()
  values <- expr_fn()
  e <- elapsed() - t
  stopifnot(length(values) == n)
  n / e
}

# ---- loopback daemons ----
root <- tempfile("pesc-bench-r-")
dir.create(file.path(root, "coordinator"), recursive = TRUE)
dir.create(file.path(root, "worker"))
dir.create(file.path(root, "tmp"))
# The embedded farm's state directory and the warm R runners' own tempdirs
# (a runner ended by a signal leaves its RtmpXXXX behind) go here, and are
# removed with it; children of this process and the daemons inherit TMPDIR.
Sys.setenv(TMPDIR = file.path(root, "tmp"))
pids <- integer()
spawn <- function(argv) {
  cmd <- sprintf("%s >>%s 2>&1 & echo $!", paste(shQuote(argv), collapse = " "),
                 shQuote(file.path(root, "daemons.log")))
  as.integer(system(cmd, intern = TRUE))
}
stop_daemons <- function() {
  for (pid in rev(pids)) tools::pskill(pid, tools::SIGTERM)
  deadline <- elapsed() + 10
  alive <- function(pid) tools::pskill(pid, 0L)
  while (any(vapply(pids, alive, logical(1))) && elapsed() < deadline) Sys.sleep(0.05)
  for (pid in pids) if (alive(pid)) tools::pskill(pid, tools::SIGKILL)
  unlink(root, recursive = TRUE)
}
cl <- NULL

main <- function() {
  on.exit({
    if (!is.null(cl)) stopCluster(cl)
    if (have_future) future::plan(future::sequential)
    invisible(gc())  # pesc's farm objects are finalized by gc only, not at exit
    stop_daemons()
  }, add = TRUE)
  pids <<- c(pids, spawn(c(file.path(daemons_dir, "pesc-coordinator"), "--listen", "127.0.0.1:0",
                           "--state-dir", file.path(root, "coordinator"))))
  address_file <- file.path(root, "coordinator", "coordinator.address")
  deadline <- elapsed() + 20
  while (!file.exists(address_file) || !nzchar(trimws(readLines(address_file, warn = FALSE)[1] %||% ""))) {
    if (elapsed() > deadline) stop("pesc-coordinator did not start; see ", file.path(root, "daemons.log"))
    Sys.sleep(0.02)
  }
  address <- trimws(readLines(address_file, warn = FALSE)[1])
  # The admin token (written before the address) for the worker and the client.
  Sys.setenv(PESC_TOKEN = trimws(readLines(file.path(root, "coordinator", "admin.token"), warn = FALSE)[1]))
  pids <<- c(pids, spawn(c(file.path(daemons_dir, "pesc-worker"), "--coordinator", address, "--slots", "2",
                           "--work-dir", file.path(root, "worker"), "--interpreter", "R=/usr/bin/Rscript",
                           # pesc's own cost, without a root worker's isolation, on
                           # a dedicated machine (the contenders before it leave the
                           # CPU busy, which would pause an owners-first worker)
                           "--no-sandbox", "--run-as=", "--owners-first=false")))

  cl <<- makeCluster(2)
  if (have_future) {
    future::plan(future::multisession, workers = 2)
  }

  contenders <- list(
    "pesc embedded" = function(n) farm(noop, repetitions = n, slots = 2L, progress = FALSE)$values,
    "pesc loopback" = function(n) farm(noop, repetitions = n, coordinator = address, progress = FALSE)$values,
    "mclapply (prescheduled)" = function(n) mclapply(seq_len(n), noop, mc.cores = 2),
    "mclapply (mc.preschedule = FALSE)" = function(n) mclapply(seq_len(n), noop, mc.cores = 2,
                                                               mc.preschedule = FALSE),
    "parLapply" = function(n) parLapply(cl, seq_len(n), noop),
    "parLapplyLB (chunk.size = 1)" = function(n) parLapplyLB(cl, seq_len(n), noop, chunk.size = 1)
  )
  counts <- setNames(rep(ranks, length(contenders)), names(contenders))
  if (have_future) {
    contenders[["future_lapply (default chunks)"]] <- function(n) future.apply::future_lapply(seq_len(n), noop)
    contenders[["future_lapply (future.chunk.size = 1)"]] <- function(n)
      future.apply::future_lapply(seq_len(n), noop, future.chunk.size = 1)
    counts[["future_lapply (default chunks)"]] <- ranks
    counts[["future_lapply (future.chunk.size = 1)"]] <- future_ranks
  }

  cat(sprintf("%s; pesc %s; future.apply %s\n", R.version.string, packageVersion("pesc"),
              if (have_future) as.character(packageVersion("future.apply")) else "not installed"))
  cat("uptime:", system("uptime", intern = TRUE), "\n")
  cat("pesc loopback coordinator:", address, "\n")
  t <- elapsed()
  for (name in names(contenders)) rate(4L, function() contenders[[name]](4L))  # warm-ups
  cat(sprintf("warm-ups done in %.1f s\n", elapsed() - t))

  samples <- setNames(lapply(names(contenders), function(x) numeric()), names(contenders))
  for (round in seq_len(rounds)) {
    for (name in names(contenders)) {
      samples[[name]] <- c(samples[[name]], rate(counts[[name]], function() contenders[[name]](counts[[name]])))
    }
    cat(sprintf("round %d: %s\n", round,
                paste(sprintf("%s %.0f/s", names(samples), vapply(samples, function(s) s[round], 0)),
                      collapse = ", ")))
  }

  med <- vapply(samples, stats::median, 0)
  fmt <- function(x) formatC(x, format = "f", digits = 0, big.mark = ",")
  cat(sprintf("\nFunction mode: a no-op function, 2 workers, median of %d rounds (min..max), ranks/s\n\n", rounds))
  cat("| contender | elements | ranks/s | pesc embedded / it | pesc loopback / it |\n")
  cat("|---|---|---|---|---|\n")
  for (name in names(samples)) {
    s <- samples[[name]]
    cat(sprintf("| %s | %d | %s (%s..%s) | %.3g | %.3g |\n", name, counts[[name]], fmt(med[[name]]),
                fmt(min(s)), fmt(max(s)), med[["pesc embedded"]] / med[[name]],
                med[["pesc loopback"]] / med[[name]]))
  }
  lb <- med[["parLapplyLB (chunk.size = 1)"]]
  cat(sprintf("\nTarget (issue 4): pesc >= 0.5 x parLapplyLB: embedded %.3f, loopback %.3f\n",
              med[["pesc embedded"]] / lb, med[["pesc loopback"]] / lb))
}

`%||%` <- function(x, y) if (is.null(x) || length(x) == 0L || is.na(x)) y else x
main()
