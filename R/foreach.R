#' foreach's \%dopar\% on a pesc farm
#'
#' \code{register_farm()} makes pesc the backend of \pkg{foreach}'s
#' \code{\%dopar\%} (Debian 12 does not package doFuture, which would run it
#' on \code{\link{pesc_farm}} futures): a loop is one function-mode job, one
#' rank per iteration, run with \code{\link{farm_lapply}}. What the loop's
#' body uses travels with it as a function's globals do (see
#' \code{\link{farm}}); \code{.packages} are attached on the worker.
#' \code{.errorhandling} is honoured: \code{"stop"} (the default) raises the
#' first failed iteration's error, \code{"remove"} and \code{"pass"} drop or
#' keep the error conditions. Results are combined in iteration order.
#'
#' @param coordinator,slots,lab as in \code{\link{farm}}.
#' @return Nothing useful; called to register the backend.
#' @examples
#' if (requireNamespace("foreach", quietly = TRUE)) {
#'   register_farm(slots = 2)
#'   library(foreach)
#'   foreach(i = 1:3, .combine = c) %dopar% sqrt(i)
#'   foreach::registerDoSEQ()
#' }
#' @export
register_farm <- function(coordinator = NULL, slots = NULL, lab = list()) {
  if (!requireNamespace("foreach", quietly = TRUE)) {
    stop("pesc: register_farm() needs the foreach package (apt-get install r-cran-foreach)", call. = FALSE)
  }
  lab_options(lab)  # a mistake in `lab` shows here, not at the first loop
  info <- function(data, item) {
    switch(item, name = "pesc", version = as.character(utils::packageVersion("pesc")),
           workers = data$slots %||% parallel::detectCores(), NULL)
  }
  foreach::setDoPar(do_farm, data = list(coordinator = coordinator, slots = slots, lab = lab), info = info)
  invisible(NULL)
}

# foreach's backend: each iteration is a rank calling the loop's body as a
# function of the loop variables, closed over the caller's environment.
do_farm <- function(obj, expr, envir, data) {
  if (!inherits(obj, "foreach")) stop("pesc: `obj` must be a foreach object", call. = FALSE)
  iterator <- iterators::iter(obj)
  accumulate <- foreach::makeAccum(iterator)
  arguments <- as.list(iterator)
  parameters <- rep(list(quote(expr = )), length(obj$argnames))
  names(parameters) <- obj$argnames
  body <- eval(call("function", as.pairlist(parameters), expr), envir)
  iteration <- function(arguments, body, packages) {
    tryCatch({
      for (p in packages) suppressPackageStartupMessages(library(p, character.only = TRUE))
      do.call(body, arguments)
    }, error = identity)
  }
  environment(iteration) <- globalenv()
  results <- farm_lapply(arguments, iteration, body = body, packages = obj$packages, coordinator = data$coordinator,
                         slots = data$slots, lab = data$lab, progress = FALSE)
  accumulate(results, seq_along(results))
  failure <- foreach::getErrorValue(iterator)
  if (identical(obj$errorHandling, "stop") && !is.null(failure)) {
    stop(simpleError(sprintf("task %d failed - \"%s\"", foreach::getErrorIndex(iterator),
                             conditionMessage(failure)), call = conditionCall(failure)))
  }
  foreach::getResult(iterator)
}
