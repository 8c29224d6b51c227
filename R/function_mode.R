# Function mode: a function, its arguments and the globals it uses travel to
# the workers as a directory (task.rds plus the runner script, inst/runner.R);
# each rank is one Rscript that calls f(rank, ...) and leaves result.rds in its
# output directory, which the client reads back and unserializes.

# Writes the job directory for f(rank, <args>); returns its path and entry.
function_task <- function(f, args) {
  if (!requireNamespace("codetools", quietly = TRUE)) {
    stop("pesc: function mode needs the codetools package (apt-get install r-cran-codetools)", call. = FALSE)
  }
  if (is.null(args)) args <- list()
  if (!is.list(args)) stop("pesc: `params` of a function must be a list of arguments", call. = FALSE)
  found <- find_globals(c(list(f), Filter(is.function, args)))
  for (name in names(found$captured)) {
    check_travel(found$captured[[name]], sprintf("`%s` (from the function's environment)", name))
  }
  for (i in seq_along(args)) {
    check_travel(args[[i]], sprintf("argument `%s`", names(args)[i] %||% i))
  }
  for (name in names(found$globals)) check_travel(found$globals[[name]], sprintf("global `%s`", name))
  write_task(list(f = f, args = args, globals = found$globals, packages = found$packages))
}

# Writes `task` (f, args, globals, packages: what inst/runner.R reads) and the
# runner into a new job directory; returns its path and entry.
write_task <- function(task) {
  dir <- tempfile("pesc-function-")
  dir.create(dir)
  saveRDS(task, file.path(dir, "task.rds"))
  file.copy(system.file("runner.R", package = "pesc", mustWork = TRUE), file.path(dir, "runner.R"))
  list(dir = dir, entry = "runner.R")
}

# The variables and functions `fns` use from the global environment (which
# serialize() does not carry), recursing into functions found there, and the
# packages whose exports they use. Variables of a closure's own environment
# travel with it; those it uses are returned as `captured`, to be checked.
find_globals <- function(fns) {
  globals <- list()
  captured <- list()
  packages <- character()
  visited <- list()
  while (length(fns) > 0L) {
    fn <- fns[[1L]]
    fns <- fns[-1L]
    if (!is.function(fn) || is.primitive(fn) || any(vapply(visited, identical, logical(1), fn))) next
    visited <- c(visited, list(fn))
    env <- environment(fn)
    for (name in codetools::findGlobals(fn)) {
      if (!is.null(globals[[name]]) || !is.null(captured[[name]])) next
      where <- locate(name, env)
      if (is.null(where)) next
      if (identical(where, globalenv())) {
        value <- get(name, envir = where)
        globals[name] <- list(value)
        if (is.function(value)) fns <- c(fns, list(value))
      } else if (is_package_env(where)) {
        packages <- union(packages, package_name(where))
      } else {
        value <- get(name, envir = where)
        captured[name] <- list(value)
        if (is.function(value)) fns <- c(fns, list(value))
      }
    }
  }
  list(globals = globals, captured = captured, packages = setdiff(packages, c("base", "pesc")))
}

locate <- function(name, env) {
  while (!identical(env, emptyenv())) {
    if (exists(name, envir = env, inherits = FALSE)) return(env)
    env <- parent.env(env)
  }
  NULL
}

is_package_env <- function(env) {
  isNamespace(env) || identical(env, baseenv()) || startsWith(environmentName(env), "package:") ||
    startsWith(environmentName(env), "imports:")
}

package_name <- function(env) {
  if (isNamespace(env)) return(getNamespaceName(env)[[1L]])
  if (identical(env, baseenv())) return("base")
  sub("^(package|imports):", "", environmentName(env))
}

# Refuses what serialize() cannot carry to another process: external
# pointers (Rcpp objects, database handles, ...) and connections.
check_travel <- function(x, what) {
  seen <- new.env()
  seen$envs <- list()
  bad <- untravelable(x, what, seen)
  if (!is.null(bad)) {
    subject <- if (!nzchar(bad$path)) what else if (startsWith(bad$path, what)) bad$path else
      paste(bad$path, "in", what)
    stop(sprintf("pesc: %s is %s, which cannot travel to a worker; create it inside the function instead",
                 subject, bad$kind), call. = FALSE)
  }
  invisible(TRUE)
}

untravelable <- function(x, path, seen) {
  if (typeof(x) %in% c("externalptr", "weakref")) return(list(path = path, kind = "an external pointer"))
  if (inherits(x, "connection")) return(list(path = path, kind = "a connection"))
  if (is.environment(x)) {
    if (is_shared_env(x) || any(vapply(seen$envs, identical, logical(1), x))) return(NULL)
    seen$envs <- c(seen$envs, list(x))
    for (name in ls(x, all.names = TRUE)) {
      value <- tryCatch(get(name, envir = x, inherits = FALSE), error = function(e) NULL)
      bad <- untravelable(value, sprintf("`%s`", name), seen)
      if (!is.null(bad)) return(bad)
    }
    return(untravelable(parent.env(x), path, seen))
  }
  if (is.function(x) && !is.primitive(x)) return(untravelable(environment(x), path, seen))
  if (is.list(x) || is.pairlist(x)) {
    for (i in seq_along(x)) {
      label <- if (!is.null(names(x)) && nzchar(names(x)[i])) names(x)[i] else i
      bad <- untravelable(x[[i]], sprintf("%s[[%s]]", path, deparse(label)), seen)
      if (!is.null(bad)) return(bad)
    }
  }
  for (name in setdiff(names(attributes(x)), c("names", "class", "dim", "dimnames", "row.names", "levels"))) {
    bad <- untravelable(attr(x, name, exact = TRUE), sprintf("attr(%s, \"%s\")", path, name), seen)
    if (!is.null(bad)) return(bad)
  }
  NULL
}

# Environments every R process has: not serialized by value.
is_shared_env <- function(env) {
  identical(env, globalenv()) || identical(env, emptyenv()) || is_package_env(env)
}

# What saveRDS wrote, from memory: uncompressed (as the runner writes), gzip
# (saveRDS's default), bzip2 or xz.
read_rds_bytes <- function(bytes) {
  starts_with <- function(magic) length(bytes) >= length(magic) && all(bytes[seq_along(magic)] == magic)
  if (starts_with(as.raw(c(0x1f, 0x8b)))) {
    connection <- gzcon(rawConnection(bytes))
    return(tryCatch(readRDS(connection), finally = close(connection)))  # R has only ~125 connections
  }
  if (starts_with(charToRaw("BZh"))) return(unserialize(memDecompress(bytes, type = "bzip2")))
  if (starts_with(as.raw(c(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)))) {
    return(unserialize(memDecompress(bytes, type = "xz")))
  }
  unserialize(bytes)
}

# Every rank's value, in rank order; the first failed rank raises an error
# of class pesc_rank_error with the remote message and call.
collect_values <- function(results, names = NULL) {
  n <- nrow(results$ranks)
  values <- vector("list", n)
  failures <- list()
  for (rank in seq_len(n) - 1L) {
    bytes <- .pesc_results_read_file(results$ptr, rank, "result.rds")
    outcome <- if (is.null(bytes)) NULL else read_rds_bytes(bytes)
    if (is.null(outcome) || !isTRUE(outcome$ok)) {
      failures[[length(failures) + 1L]] <- list(rank = rank, outcome = outcome)
    } else {
      values[rank + 1L] <- list(outcome$value)
    }
  }
  if (length(failures) > 0L) stop(rank_error(failures, results))
  names(values) <- names
  values
}

rank_error <- function(failures, results) {
  first <- failures[[1L]]
  rank <- first$rank
  outcome <- first$outcome
  if (is.null(outcome)) {
    row <- results$ranks[rank + 1L, ]
    tail_lines <- utils::tail(strsplit(results$rank_outputs[[rank + 1L]], "\n", fixed = TRUE)[[1]], 5L)
    remote_message <- sprintf("it returned no value (status %s, exit code %d%s)%s", row$status, row$exit_code,
                              if (nzchar(row$error)) paste0(", ", row$error) else "",
                              if (length(tail_lines)) paste0("; its output ends:\n  ",
                                                             paste(tail_lines, collapse = "\n  ")) else "")
    remote_call <- NULL
  } else {
    remote_message <- outcome$message
    remote_call <- outcome$call
  }
  message <- sprintf("pesc: rank %d failed: %s%s", rank, remote_message,
                     if (is.null(remote_call)) "" else paste0("\n  in call: ", remote_call))
  if (length(failures) > 1L) {
    message <- sprintf("%s\n  (%d of %d ranks failed: %s; see the condition's $results)", message,
                       length(failures), nrow(results$ranks),
                       paste(vapply(failures, function(f) f$rank, integer(1)), collapse = ", "))
  }
  structure(class = c("pesc_rank_error", "error", "condition"),
            list(message = message, call = NULL, rank = rank, remote_message = remote_message,
                 remote_call = remote_call, failed_ranks = vapply(failures, function(f) f$rank, integer(1)),
                 results = results))
}
