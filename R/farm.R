#' Run a script or a function as ranks on a farm
#'
#' \code{farm()} runs \code{process} \code{repetitions} times, as ranks
#' \code{0..repetitions-1}, waits for every rank and returns the results in
#' rank order. \code{farm_submit()} only submits and returns a job;
#' \code{farm_wait()} waits for it and \code{farm_cancel()} stops it.
#'
#' A \strong{script} (a file name) gets, as command-line arguments (see
#' \code{\link{commandArgs}}), the PESC flags \code{--rank}, \code{--world_size},
#' \code{--output_dir}, \code{--parameters} and the others, and the same facts
#' as \code{PESC_*} environment variables (\code{PESC_RANK},
#' \code{PESC_WORLD_SIZE}, \code{PESC_OUTPUT_DIR}, \code{PESC_PARAMETER_<i>},
#' ...). Everything it prints comes back in \code{$output}; files it writes in
#' its output directory can be read with \code{\link{rank_file}}.
#'
#' A script runs in a fresh process per rank. A \strong{function} is called
#' as \code{f(rank, ...)} on a worker, with the elements of \code{params} as
#' further arguments, in a warm R process: each worker slot that runs ranks
#' of the job starts one \code{Rscript}, which loads the job once (the
#' function, its arguments, its globals and packages) and then runs rank
#' after rank of it, so a rank costs no R start. Each rank gets a fresh
#' environment for its call and its own \code{PESC_*} variables and output
#' directory, but what a rank leaves in the process (variables it assigns in
#' the global environment, options, loaded packages, the random number
#' generator's state) is still there for the next rank on that slot. For
#' reproducible draws give a \code{seed}: each rank then starts from its own
#' L'Ecuyer-CMRG stream of it. A process that dies is
#' replaced and its rank run again; processes end with the job. The
#' function, its arguments and the global variables it uses (found with
#' \code{codetools::findGlobals}) travel with the job; packages it uses from
#' attached packages are attached on the worker, so they must be installed
#' there. A small value comes back over the process's pipe, a large one as
#' a file; either way it is unserialized here. Values come back in
#' \code{$values}, a list indexed by \code{rank + 1}. An error in a rank is raised here as an error of class
#' \code{pesc_rank_error} naming the rank, with the remote message and call.
#' Objects that cannot travel (external pointers, connections) are refused at
#' submission with the object's name.
#'
#' Interrupting the wait (Esc, Ctrl-C) cancels the job on the farm, which
#' stops its running ranks; the R session stays usable.
#'
#' @param process the path of a script (or of a directory or tar/zip archive,
#'   with \code{entry}), or an R function.
#' @param repetitions the number of ranks.
#' @param params for a script, a vector of values passed to every rank as
#'   character strings after \code{--parameters}; for a function, a list of
#'   further arguments.
#' @param coordinator \code{"host:port"} of a \code{pesc-coordinator};
#'   \code{NULL} uses the \code{PESC_COORDINATOR} environment variable and,
#'   when that is unset, an embedded local farm inside this R session.
#' @param domain how a rank starts: \code{"R"} (\code{Rscript}),
#'   \code{"python"}, \code{"shell"}, \code{"native"}, ...; \code{NULL} infers
#'   it from the file name (\code{.R} gives \code{"R"}). Functions always use
#'   \code{"R"}.
#' @param progress show a progress bar while waiting.
#' @param slots for the embedded farm, how many ranks run at once
#'   (\code{NULL}: one per core).
#' @param entry the file to run inside a directory or archive process.
#' @param name a label for the job, shown by \code{pesc jobs}.
#' @param lab options for a lab of machines, a list with any of
#'   \code{max_attempts} (retries for a rank that fails), \code{timeout} and
#'   \code{checkpoint_interval} (seconds), \code{rooms} (where ranks may run),
#'   \code{same_machine} (every rank on one worker), \code{shared} (files or
#'   URLs every rank finds read-only in its app_dir), the per-rank limits
#'   \code{memory} and \code{output_size} (bytes or text such as "512M"),
#'   \code{cpu_time} (seconds per process), \code{open_files} and
#'   \code{processes}, \code{network} (\code{TRUE}: ranks may use the
#'   network on workers that sandbox them), \code{parallel} (\code{TRUE}: a
#'   gang, every rank at once, each knowing rank 0's address and a free port
#'   as \code{MASTER_ADDR} and \code{MASTER_PORT}; a lost rank restarts the
#'   gang), \code{no_duplicates} (\code{TRUE}: never start a straggling rank
#'   a second time on an idle worker, for ranks with side effects),
#'   \code{notify} (targets told once when the job ends, with its outcome,
#'   wall time and speedup: \code{"mailto:ADDR"}, when the coordinator has
#'   \code{--smtp-url}, or an \code{http(s)://} URL that gets a JSON POST), and
#'   \code{gpus} per rank of at least \code{min_capability} (ranks see
#'   theirs as \code{CUDA_VISIBLE_DEVICES}). A rank killed for a limit says
#'   which in the \code{limit_exceeded} column of \code{ranks}.
#' @param seed a whole number for reproducible random numbers: rank
#'   \code{r} of a function draws from L'Ecuyer-CMRG stream \code{r} of it
#'   (the stream \code{future.apply}'s \code{future.seed = seed} gives
#'   element \code{r + 1}, as \code{parallel::nextRNGStream} steps), whatever
#'   the workers, slots, chunks or retries; a script gets it as
#'   \code{PESC_SEED}. \code{NULL}: no seed. Also accepted in \code{lab}.
#' @param pool run the ranks on a batch system's nodes from this R session
#'   (on a cluster's login node): a batch system's name (\code{"slurm"}) or a
#'   named list of \code{batch_system}, \code{partition}, \code{time_limit}
#'   and \code{idle_timeout} (\code{"10m"}, \code{"1h"} or seconds),
#'   \code{max_workers}, \code{slots_per_worker}, \code{submit_args},
#'   \code{worker_args}, \code{worker} (the pesc-worker pilots run; default
#'   \code{PESC_WORKER_BIN}), \code{listen} (\code{"host:port"} the nodes
#'   reach) and \code{local_slots}. A coordinator inside this session, with
#'   a token and TLS, submits pesc-worker pilots while the job's ranks wait;
#'   \code{farm()} cancels them when the job is done, \code{farm_close()}
#'   after \code{farm_submit()}, and at the latest when the job is garbage
#'   collected or R exits.
#' @param job a job returned by \code{farm_submit()}.
#' @return \code{farm()} and \code{farm_wait()}: an object of class
#'   \code{pesc_results}, a list with \code{output} (every rank's printed
#'   output joined in rank order), \code{ranks} (a data frame with one row per
#'   rank: rank, status, exit_code, signal, worker, start, end, duration and
#'   cpu_time in seconds, max_rss_kb, error, limit_exceeded, failure_class: whose
#'   fault a failure was, "job", "rank", "worker" or "owner", and left_out: links
#'   leading out of its output directory, left out of its files), \code{values}
#'   (function mode only) and \code{job_id}. A job whose first ranks all fail
#'   for its own fault (a program that cannot execute) stops with the reason.
#'   \code{farm_submit()}: an object of class
#'   \code{pesc_job}. \code{farm_cancel()}: the job, invisibly.
#' @seealso \code{\link{farm_lapply}} and \code{\link{farm_map}},
#'   \code{\link{pesc_farm}} (futures on a farm), \code{\link{rank_output}}
#' @examples
#' script <- tempfile(fileext = ".R")
#' writeLines(c(
#'   'rank <- as.integer(Sys.getenv("PESC_RANK"))',
#'   'cat("rank", rank, "says", rank^2, "\\n")'), script)
#' res <- farm(script, repetitions = 3, slots = 2, progress = FALSE)
#' cat(res$output)
#' res$ranks[, c("rank", "status", "duration")]
#'
#' x <- c(2.1, 3.5, 4.0, 5.2, 6.8)
#' boot_mean <- function(rank, n) mean(sample(x, n, replace = TRUE))
#' unlist(farm(boot_mean, repetitions = 3, params = list(n = 50), seed = 1,
#'             slots = 2, progress = FALSE)$values)
#' @export
farm <- function(process, repetitions = 1L, params = NULL, coordinator = NULL, domain = NULL,
                 progress = TRUE, slots = NULL, entry = NULL, name = NULL, lab = list(), seed = NULL,
                 pool = NULL) {
  job <- farm_submit(process, repetitions = repetitions, params = params, coordinator = coordinator,
                     domain = domain, slots = slots, entry = entry, name = name, lab = lab, seed = seed,
                     pool = pool)
  on.exit(farm_close(job), add = TRUE)
  farm_wait(job, progress = progress)
}

#' @rdname farm
#' @export
farm_submit <- function(process, repetitions = 1L, params = NULL, coordinator = NULL, domain = NULL,
                        slots = NULL, entry = NULL, name = NULL, lab = list(), seed = NULL, pool = NULL) {
  if (!is.null(pool) && !is.null(coordinator)) {
    stop("pesc: a `pool` starts its own coordinator for the session; give `pool` or `coordinator`, not both",
         call. = FALSE)
  }
  if (!is.null(seed)) lab$seed <- seed
  lab <- lab_options(lab)
  repetitions <- check_count(repetitions, "repetitions")
  if (is.function(process)) {
    if (!is.null(domain) && !identical(domain, "R")) {
      stop("pesc: a function runs in the \"R\" domain, not \"", domain, "\"", call. = FALSE)
    }
    spec <- function_spec(function_task(process, params))
  } else {
    if (!is.character(process) || length(process) != 1L || is.na(process)) {
      stop("pesc: `process` must be a file name or a function", call. = FALSE)
    }
    if (!file.exists(process)) stop("pesc: no such file: ", process, call. = FALSE)
    if (!is.null(params) && (!is.atomic(params) || anyNA(params))) {
      stop("pesc: `params` of a script must be a vector of values without NA", call. = FALSE)
    }
    spec <- list(process = normalizePath(process), entry = entry %||% "",
                 params = as.character(params %||% character()),
                 domain = domain %||% .pesc_domain_for_file(entry %||% process), mode = "script", task_dir = NULL)
  }
  if (is.null(pool)) {
    farm_ptr <- .pesc_farm_new(spec$domain, coordinator %||% "", as.integer(slots %||% 0L), "")
    return(submit_spec(farm_ptr, spec, repetitions, name, lab))
  }
  farm_ptr <- .pesc_farm_session(spec$domain, "", pool_options(pool))
  job <- tryCatch(submit_spec(farm_ptr, spec, repetitions, name, lab),
                  error = function(e) { .pesc_farm_close(farm_ptr); stop(e) })
  job$session <- farm_ptr
  job
}

#' @rdname farm
#' @export
farm_close <- function(job) {
  stopifnot(inherits(job, "pesc_job"))
  if (!is.null(job$session)) .pesc_farm_close(job$session)
  invisible(job)
}

# A pool as the texts pool_options_from reads: a batch system's name or a
# named list of options.
pool_options <- function(pool) {
  if (is.character(pool) && length(pool) == 1L) pool <- list(batch_system = pool)
  if (!is.list(pool) || (length(pool) > 0L && is.null(names(pool)))) {
    stop("pesc: `pool` must be a batch system's name or a named list, e.g. ",
         "list(batch_system = \"slurm\", partition = \"short\", time_limit = \"1h\")", call. = FALSE)
  }
  lapply(pool[!vapply(pool, is.null, logical(1))], as_texts)
}

# The spec of a function-mode job whose task directory `task` (what
# write_task() returned) holds.
function_spec <- function(task) {
  list(process = task$dir, entry = task$entry, params = character(), domain = "R", mode = "function",
       task_dir = task$dir)
}

# Submits the job `spec` describes to the farm `farm_ptr`; `lab` has been
# through lab_options(). Returns a pesc_job.
submit_spec <- function(farm_ptr, spec, repetitions, name, lab) {
  options <- c(lab, list(entry = spec$entry, name = name %||% "",
                         warm_runner = as_texts(identical(spec$mode, "function"))))
  ptr <- .pesc_farm_map(farm_ptr, spec$process, repetitions, spec$params, options)
  structure(list(id = .pesc_job_id(ptr), repetitions = repetitions, mode = spec$mode,
                 domain = spec$domain, task_dir = spec$task_dir, farm = .pesc_farm_describe(farm_ptr),
                 ptr = ptr, names = NULL),
            class = "pesc_job")
}

#' @rdname farm
#' @export
farm_wait <- function(job, progress = TRUE) {
  stopifnot(inherits(job, "pesc_job"))
  n <- job$repetitions
  bar <- if (isTRUE(progress)) progress_display(n) else NULL
  finished <- FALSE
  on.exit({
    if (!is.null(bar)) bar$close()
    # An interrupt or an error while waiting: the job must not run on.
    if (!finished) try(.pesc_job_cancel(job$ptr), silent = TRUE)
    if (!is.null(job$task_dir)) unlink(job$task_dir, recursive = TRUE)
  })
  got <- job$returned %||% 0L  # ranks a poll (resolved() of a future) already took
  said_waiting <- ""  # a job whose ranks have nowhere to run looks hung: say why, once
  repeat {
    row <- .pesc_job_next(job$ptr, 250L)
    if (!is.null(row)) {
      got <- got + 1L
      if (!is.null(bar)) bar$show(got)
    } else if (.pesc_job_done(job$ptr)) {
      break
    } else if (isTRUE(progress) && !identical(waiting <- .pesc_job_waiting(job$ptr), said_waiting)) {
      said_waiting <- waiting
      if (nzchar(waiting)) message("\npesc: the ranks wait: ", waiting)
    }
  }
  finished <- TRUE
  if (got < n) {
    stop(sprintf("pesc: job %s ended with %d of %d ranks returned; was it cancelled?", job$id, got, n),
         call. = FALSE)
  }
  results <- new_results(.pesc_job_results(job$ptr))
  if (identical(job$mode, "function")) {
    results$values <- collect_values(results, job$names)
  }
  results
}

#' @rdname farm
#' @param job_id the id of a job on a coordinator (\code{job$id}, or as
#'   \code{pesc jobs} lists it), to follow from this session.
#' @details \code{farm_attach()} picks up a job submitted earlier, from this
#'   or another session or machine: a job belongs to the farm, not to the R
#'   session that submitted it. Wait on it with \code{farm_wait()}; values of
#'   a function-mode job come back as they would have to its submitter (names
#'   of \code{farm_lapply()} elements excepted).
#' @export
farm_attach <- function(job_id, coordinator = NULL) {
  if (!is.character(job_id) || length(job_id) != 1L || is.na(job_id) || !nzchar(job_id)) {
    stop("pesc: `job_id` must be one job id, such as the `id` of a job farm_submit() returned",
         call. = FALSE)
  }
  coordinator <- coordinator %||% Sys.getenv("PESC_COORDINATOR")
  if (!nzchar(coordinator)) {
    stop("pesc: farm_attach() needs the coordinator that runs the job: give `coordinator` ",
         "or set PESC_COORDINATOR (an embedded farm's jobs end with its session)", call. = FALSE)
  }
  farm_ptr <- .pesc_farm_new("R", coordinator, 0L, "")
  ptr <- .pesc_farm_attach(farm_ptr, job_id)
  structure(list(id = job_id, repetitions = .pesc_job_progress(ptr)[["total"]],
                 mode = if (.pesc_job_warm_runner(ptr)) "function" else "script", domain = NA_character_,
                 task_dir = NULL, farm = .pesc_farm_describe(farm_ptr), ptr = ptr, names = NULL),
            class = "pesc_job")
}

# Ranks done out of `total`: the progress package's bar when it is installed
# (with an ETA, and drawn in RStudio too), utils::txtProgressBar otherwise.
progress_display <- function(total) {
  if (requireNamespace("progress", quietly = TRUE)) {
    bar <- progress::progress_bar$new(total = total, clear = FALSE, show_after = 0,
                                      format = "  ranks [:bar] :current/:total :percent eta :eta")
    return(list(show = function(done) bar$update(done / total),
                close = function() if (!bar$finished) bar$terminate()))
  }
  bar <- utils::txtProgressBar(min = 0, max = total, style = 3)
  list(show = function(done) utils::setTxtProgressBar(bar, done), close = function() close(bar))
}

#' @rdname farm
#' @export
farm_cancel <- function(job) {
  stopifnot(inherits(job, "pesc_job"))
  .pesc_job_cancel(job$ptr)
  invisible(job)
}

#' @export
print.pesc_job <- function(x, ...) {
  p <- .pesc_job_progress(x$ptr)
  cat(sprintf("<pesc job %s: %d ranks (%s mode, domain %s) on %s>\n", x$id, x$repetitions, x$mode,
              x$domain, x$farm))
  if (p[["total"]] > 0L) {
    cat(sprintf("  %d pending, %d queued at workers, %d running, %d succeeded, %d failed, %d cancelled\n",
                p[["pending"]], p[["queued_at_workers"]], p[["running"]], p[["succeeded"]], p[["failed"]],
                p[["cancelled"]]))
  }
  invisible(x)
}

#' Apply a function to each element of a list, one rank per element
#'
#' Like \code{\link{lapply}}, but each element is a rank on the farm:
#' \code{FUN(X[[i]], ...)} runs as rank \code{i - 1}. Names and order are
#' kept. \code{farm_map()} maps over several vectors at once, like
#' \code{\link{mapply}} or clustermq's \code{Q()}: rank \code{i - 1} calls
#' \code{f(<first>[[i]], <second>[[i]], ..., <const>)}, passing each vector's
#' element under the name it was given. See \code{\link{farm}} for what
#' travels with the function, where it runs and how errors come back.
#'
#' @param X a vector or list.
#' @param FUN,f the function to apply.
#' @param ... for \code{farm_lapply()}, further arguments to \code{FUN}, the
#'   same for every element; for \code{farm_map()}, the vectors or lists to
#'   map over, all of one length, named to pass them by name.
#' @param const for \code{farm_map()}, a list of further arguments to
#'   \code{f}, the same for every rank.
#' @param coordinator,progress,slots,lab,seed,pool as in \code{\link{farm}}.
#' @return A list as long as \code{X} (for \code{farm_map()}, as the
#'   vectors), with the names of \code{X} (of the first vector), values in
#'   order.
#' @examples
#' farm_lapply(list(a = 1:3, b = 4:6), sum, slots = 2, progress = FALSE)
#' farm_map(function(x, y, power) (x + y)^power, x = 1:3, y = 4:6,
#'          const = list(power = 2), slots = 2, progress = FALSE)
#' @export
farm_lapply <- function(X, FUN, ..., coordinator = NULL, progress = TRUE, slots = NULL, lab = list(),
                        seed = NULL, pool = NULL) {
  FUN <- match.fun(FUN)
  X <- as.list(X)
  if (length(X) == 0L) return(structure(list(), names = names(X)))
  apply_one <- function(rank, .X, .FUN, ...) .FUN(.X[[rank + 1L]], ...)
  environment(apply_one) <- globalenv()
  job <- farm_submit(apply_one, repetitions = length(X), params = c(list(.X = X, .FUN = FUN), list(...)),
                     coordinator = coordinator, slots = slots, lab = lab, seed = seed, pool = pool)
  on.exit(farm_close(job), add = TRUE)
  job$names <- names(X)
  farm_wait(job, progress = progress)$values
}

#' @rdname farm_lapply
#' @export
farm_map <- function(f, ..., const = list(), coordinator = NULL, progress = TRUE, slots = NULL, lab = list(),
                     seed = NULL, pool = NULL) {
  f <- match.fun(f)
  vectors <- lapply(list(...), as.list)
  if (length(vectors) == 0L) stop("pesc: farm_map() needs at least one vector to map over", call. = FALSE)
  if (!is.list(const)) stop("pesc: `const` must be a list of arguments", call. = FALSE)
  n <- unique(lengths(vectors))
  if (length(n) != 1L) {
    stop("pesc: the vectors of farm_map() must have one length, not ", paste(lengths(vectors), collapse = ", "),
         call. = FALSE)
  }
  if (n == 0L) return(structure(list(), names = names(vectors[[1L]])))
  # The call reads f(x = .v1, y = .v2, ...), so that an error's call names
  # the arguments rather than deparsing their values.
  apply_one <- function(rank, .vectors, .f, .const) {
    values <- c(lapply(.vectors, function(v) v[[rank + 1L]]), .const)
    variables <- paste0(".v", seq_along(values))
    env <- new.env(parent = environment())
    for (i in seq_along(values)) assign(variables[i], values[[i]], envir = env)
    the_call <- as.call(c(list(as.name(".f")), lapply(variables, as.name)))
    arg_names <- names(values)
    names(the_call) <- c("", if (is.null(arg_names)) character(length(values)) else arg_names)
    eval(the_call, env)
  }
  environment(apply_one) <- globalenv()
  job <- farm_submit(apply_one, repetitions = n, params = list(.vectors = vectors, .f = f, .const = const),
                     coordinator = coordinator, slots = slots, lab = lab, seed = seed, pool = pool)
  on.exit(farm_close(job), add = TRUE)
  job$names <- names(vectors[[1L]])
  farm_wait(job, progress = progress)$values
}

check_count <- function(x, what) {
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || x < 1 || x != round(x)) {
    stop("pesc: `", what, "` must be a positive whole number", call. = FALSE)
  }
  as.integer(x)
}

# The domain a file name implies, as `pesc run` infers it.
`%||%` <- function(x, y) if (is.null(x)) y else x

# `lab` as the core reads it: each option as text, checked by the one table
# every client goes through (pesc::map_options_from), which names what is
# wrong. Options not given keep their defaults there.
lab_options <- function(lab) {
  if (!is.list(lab) || (length(lab) > 0L && is.null(names(lab)))) {
    stop("pesc: `lab` must be a named list, e.g. list(max_attempts = 3, memory = \"2G\")", call. = FALSE)
  }
  lab <- lab[!vapply(lab, is.null, logical(1))]
  if (!is.null(lab$seed)) lab$seed <- seed_text(lab$seed)
  texts <- lapply(lab, as_texts)
  .pesc_check_options(texts)
  texts
}

# A value as the texts map_options_from reads: true/false, numbers written out.
as_texts <- function(value) {
  if (is.logical(value)) return(ifelse(value, "true", "false"))
  if (is.numeric(value)) return(format(value, scientific = FALSE, trim = TRUE, digits = 15))
  as.character(value)
}

# A seed as PESC_SEED's text ("" for none): a whole number set.seed() takes.
seed_text <- function(seed) {
  if (is.null(seed)) return("")
  if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed != round(seed) || seed < 0 ||
      seed > .Machine$integer.max) {
    stop("pesc: `seed` must be a whole number from 0 to ", .Machine$integer.max, call. = FALSE)
  }
  format(seed, scientific = FALSE)
}
