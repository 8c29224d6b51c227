# A backend for the future package: each future is one rank of a
# function-mode job, so future.apply, furrr and doFuture run on a farm
# unchanged. future gives the expression (wrapped by getExpression() to
# capture stdout and conditions into a FutureResult) and its globals; the
# rank evaluates it as future's own cluster workers do (globals assigned in
# the global environment, the expression evaluated there) and returns the
# FutureResult as its value.

#' Futures on a pesc farm
#'
#' A backend for the \pkg{future} package: with
#' \code{future::plan(pesc::pesc_farm)}, every future (of \code{future()},
#' \code{future.apply::future_lapply()}, \code{furrr::future_map()},
#' \code{foreach} with \code{doFuture}, ...) runs as one rank of a
#' function-mode job on the farm, from a warm R process there (see
#' \code{\link{farm}}). Its globals and packages are those \pkg{future} finds;
#' its output and conditions (messages, warnings) are relayed when its value
#' is collected, and an error in it is raised there as the error itself.
#' A rank that fails for another reason (its process died, a limit of
#' \code{lab} was exceeded) raises a \code{FutureError}.
#'
#' Options go through \code{plan()}:
#' \code{plan(pesc::pesc_farm, slots = 2)},
#' \code{plan(pesc::pesc_farm, coordinator = "host:port", workers = 64,
#' lab = list(memory = "2G"))}. The futures of a plan share one embedded
#' farm (or one connection to the coordinator), made with the first of them
#' and kept for the session. The workers' R needs \pkg{future} installed.
#'
#' Futures are never held back: beyond the farm's free slots they queue on
#' the farm. \code{future::nbrOfWorkers()}, which tells future.apply and
#' furrr how many chunks to cut the work into, is \code{workers} when given;
#' else, for the embedded farm, its \code{slots} (one per core by default);
#' for a coordinator, whose lab this session cannot count, 32.
#'
#' @param expr,envir,substitute,globals,packages,label as for
#'   \code{future::future()}; given by \pkg{future}, not by you.
#' @param coordinator,slots,lab as in \code{\link{farm}}.
#' @param workers how many futures are expected to run at once (see above).
#' @param ... further arguments of \code{future::Future()} (\code{lazy},
#'   \code{seed}, \code{stdout}, \code{conditions}, ...).
#' @return A future of class \code{PescFuture}.
#' @seealso \code{\link{farm_lapply}} and \code{\link{farm_map}}, which run
#'   one job with one rank per element rather than one per chunk;
#'   \code{\link{register_farm}} for foreach without doFuture.
#' @examples
#' if (requireNamespace("future.apply", quietly = TRUE)) {
#'   old <- future::plan(pesc::pesc_farm, slots = 2)
#'   print(future.apply::future_sapply(1:4, function(x) x^2))
#'   future::plan(old)
#' }
#' @export
pesc_farm <- function(expr, envir = parent.frame(), substitute = TRUE, globals = TRUE, packages = NULL,
                      label = NULL, coordinator = NULL, slots = NULL, workers = NULL, lab = list(), ...) {
  if (substitute) expr <- substitute(expr)
  future <- PescFuture(expr = expr, envir = envir, globals = globals, packages = packages, label = label,
                       coordinator = coordinator, slots = slots, workers = workers, lab = lab, ...)
  if (!future$lazy) future <- future::run(future)
  invisible(future)
}
class(pesc_farm) <- c("pesc_farm", "multiprocess", "future", "function")

PescFuture <- function(expr, envir, globals, packages, label, coordinator, slots, workers, lab, ...) {
  if (!requireNamespace("future", quietly = TRUE)) {
    stop("pesc: pesc_farm needs the future package (apt-get install r-cran-future)", call. = FALSE)
  }
  found <- future::getGlobalsAndPackages(expr, envir = envir, globals = globals)
  future <- future::MultiprocessFuture(expr = found$expr, envir = envir, substitute = FALSE,
                                       globals = found$globals, packages = unique(c(packages, found$packages)),
                                       label = label, ...)
  future$coordinator <- coordinator
  future$slots <- slots
  future$workers <- workers
  future$lab <- lab_options(lab)
  structure(future, class = c("PescFuture", class(future)))
}

#' @exportS3Method future::run
run.PescFuture <- function(future, ...) {
  if (future$state != "created") {
    stop(future::FutureError("pesc: a future can only be launched once", future = future))
  }
  # As future's cluster workers take them: each global by value, without
  # the environments the FutureGlobals list notes they came from.
  globals <- lapply(seq_along(future$globals), function(i) future$globals[[i]])
  names(globals) <- names(future$globals)
  evaluate <- function(rank, expr, globals) {
    for (name in names(globals)) assign(name, globals[[name]], envir = globalenv())
    eval(expr, envir = globalenv())
  }
  environment(evaluate) <- globalenv()
  task <- write_task(list(f = evaluate, args = list(expr = future::getExpression(future), globals = globals),
                          globals = list(), packages = character()))
  future$job <- submit_spec(plan_farm(future$coordinator, future$slots), function_spec(task), 1L,
                            future$label %||% "future", future$lab)
  future$state <- "running"
  assign(future$job$id, future, envir = running_futures)
  invisible(future)
}

#' @exportS3Method future::resolved
resolved.PescFuture <- function(x, run = TRUE, ...) {
  if (!is.null(x$result)) return(TRUE)
  if (x$state == "created") {
    if (!run) return(FALSE)
    x <- future::run(x)
  }
  # The job learns that it is done only from the events it reads: read
  # what has come, counting the ranks for farm_wait().
  while (!is.null(.pesc_job_next(x$job$ptr, 0L))) x$job$returned <- (x$job$returned %||% 0L) + 1L
  .pesc_job_done(x$job$ptr)
}

#' @exportS3Method future::result
result.PescFuture <- function(future, ...) {
  if (inherits(future$result, "FutureResult")) return(future$result)
  if (future$state == "created") future <- future::run(future)
  forget_running(future$job$id)
  results <- tryCatch(farm_wait(future$job, progress = FALSE), error = identity)
  if (inherits(results, "error")) {
    future$state <- "failed"
    stop(future::FutureError(sprintf("pesc: the rank of future %s (job %s) failed: %s",
                                     sQuote(future$label %||% "<none>"), future$job$id,
                                     conditionMessage(results)), future = future))
  }
  result <- results$values[[1L]]
  if (!inherits(result, "FutureResult")) {
    future$state <- "failed"
    stop(future::UnexpectedFutureResultError(future))
  }
  future$result <- result
  future$state <- "finished"
  result
}

#' @exportS3Method future::nbrOfWorkers
nbrOfWorkers.pesc_farm <- function(evaluator) {
  option <- function(name) {
    value <- formals(evaluator)[[name]]  # tweak() and plan() keep their arguments there
    if (is.language(value)) eval(value, environment(evaluator)) else value
  }
  workers <- option("workers")
  if (!is.null(workers)) return(check_count(workers, "workers"))
  coordinator <- option("coordinator") %||% Sys.getenv("PESC_COORDINATOR")
  if (nzchar(coordinator)) return(32L)
  slots <- option("slots")
  if (!is.null(slots)) check_count(slots, "slots") else max(1L, parallel::detectCores(), na.rm = TRUE)
}

#' @exportS3Method future::nbrOfFreeWorkers
nbrOfFreeWorkers.pesc_farm <- function(evaluator, background = FALSE, ...) {
  for (id in ls(running_futures)) if (future::resolved(running_futures[[id]])) forget_running(id)
  max(0L, future::nbrOfWorkers(evaluator) - length(running_futures))
}

# Launched futures not known to be resolved, by job id.
running_futures <- new.env(parent = emptyenv())

forget_running <- function(id) {
  if (exists(id, envir = running_futures, inherits = FALSE)) rm(list = id, envir = running_futures)
}

# The farm of a plan's futures, made with the first of them.
plan_farms <- new.env(parent = emptyenv())

plan_farm <- function(coordinator, slots) {
  key <- paste(coordinator %||% "", slots %||% 0L)
  if (is.null(plan_farms[[key]])) {
    plan_farms[[key]] <- .pesc_farm_new("R", coordinator %||% "", as.integer(slots %||% 0L), "")
  }
  plan_farms[[key]]
}
