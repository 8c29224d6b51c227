# Shared by the test files: small farms, scripts written on the fly, and real
# daemons on loopback when PESC_BUILD names a build of the C++ side.

kSlots <- 2L

write_script <- function(lines, ext = ".R") {
  path <- tempfile("pesc-test-", fileext = ext)
  writeLines(lines, path)
  path
}

wait_until <- function(condition, timeout = 60, what = "condition") {
  deadline <- Sys.time() + timeout
  while (!condition()) {
    if (Sys.time() > deadline) stop("timed out waiting for ", what)
    Sys.sleep(0.1)
  }
  invisible(TRUE)
}

# Alive and not a zombie (nobody may reap ranks orphaned in a container).
process_alive <- function(pid) {
  status <- file.path("/proc", pid, "status")
  if (!file.exists(status)) return(FALSE)
  state <- tryCatch(grep("^State:", readLines(status), value = TRUE), error = function(e) character())
  length(state) == 1L && !grepl("zombie", state, fixed = TRUE)
}

# Starts `command args` in the background; returns its pid.
spawn <- function(command, args, log) {
  line <- paste(c(shQuote(command), shQuote(args)), collapse = " ")
  as.integer(system(sprintf("%s >%s 2>&1 & echo $!", line, shQuote(log)), intern = TRUE))
}

# A coordinator and one worker (2 slots) on loopback, stopped when `env`
# ends; their address. Skips when PESC_BUILD is unset.
local_daemons <- function(env = parent.frame()) {
  build <- Sys.getenv("PESC_BUILD")
  skip_if(!nzchar(build), "PESC_BUILD is unset: set it to a build directory with daemons/ to test real daemons")
  coordinator_bin <- file.path(build, "daemons", "pesc-coordinator")
  worker_bin <- file.path(build, "daemons", "pesc-worker")
  skip_if(!file.exists(coordinator_bin), paste("no", coordinator_bin, "(build the daemons first)"))
  dir <- tempfile("pesc-daemons-")
  dir.create(file.path(dir, "state"), recursive = TRUE)
  dir.create(file.path(dir, "work"))
  pids <- spawn(coordinator_bin, c("--listen", "127.0.0.1:0", "--state-dir", file.path(dir, "state")),
                file.path(dir, "coordinator.log"))
  withr::defer({
    for (pid in rev(pids)) tools::pskill(pid, tools::SIGTERM)
    try(wait_until(function() !any(vapply(pids, process_alive, logical(1))), 10, "daemons to stop"))
    unlink(dir, recursive = TRUE)
  }, envir = env)
  address_file <- file.path(dir, "state", "coordinator.address")
  wait_until(function() file.exists(address_file) && length(readLines(address_file, warn = FALSE)) > 0L,
             30, "the coordinator's address")
  address <- trimws(readLines(address_file, warn = FALSE)[[1]])
  # The coordinator's admin token (written before its address), for the
  # worker and the clients of this test.
  Sys.setenv(PESC_TOKEN = trimws(readLines(file.path(dir, "state", "admin.token"), warn = FALSE)[[1]]))
  # Unsandboxed, as this user: tests watch their ranks through files in their
  # own temporary dirs, which sandboxed ranks cannot see. A busy test machine
  # must not pause it (owners first has C++ tests).
  pids <- c(pids, spawn(worker_bin, c("--coordinator", address, "--slots", "2", "--work-dir",
                                      file.path(dir, "work"), "--no-sandbox", "--run-as=",
                                      "--owners-first=false"),
                        file.path(dir, "worker.log")))
  address
}
