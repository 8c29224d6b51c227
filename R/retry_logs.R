# Around a finished or running job: run its failed ranks again, follow a
# rank's output while it runs.

#' Run a job's failed ranks again
#'
#' Gives the ranks of a finished job that did not succeed new attempts, in
#' the same job on the same farm, and waits for them as \code{\link{farm_wait}}
#' does. The results stay one set in rank order: the retried ranks' new
#' outcomes replace their failed ones, and \code{$output} joins every rank's
#' output in order. In function mode \code{$values} holds every rank's value
#' (names given to \code{farm_lapply()} elements are not kept).
#'
#' @param results what \code{\link{farm}} or \code{\link{farm_wait}}
#'   returned, or the error a function-mode job raised (its \code{$results}).
#' @param ranks the ranks to run again instead (from 0); a rank that
#'   succeeded runs again too. Default: every rank that did not succeed.
#' @param progress show a progress bar while waiting.
#' @return The job's results, as \code{\link{farm}} returns them.
#'   An error of class \code{pesc_error} says when there is nothing to retry,
#'   when the job still runs, or when a rank is out of range.
#' @examples
#' marker <- tempfile()
#' script <- tempfile(fileext = ".R")
#' writeLines(c(sprintf('fixed <- file.exists("%s")', marker),
#'              'if (Sys.getenv("PESC_RANK") == "1" && !fixed) quit(status = 3)',
#'              'cat("rank", Sys.getenv("PESC_RANK"), "\\n")'), script)
#' res <- farm(script, repetitions = 3, slots = 2, progress = FALSE)
#' res$ranks$status
#' file.create(marker)
#' res <- farm_retry(res, progress = FALSE)
#' res$output
#' @export
farm_retry <- function(results, ranks = NULL, progress = TRUE) {
  if (inherits(results, "pesc_rank_error")) results <- results$results
  if (!inherits(results, "pesc_results")) {
    stop("pesc: farm_retry() takes the results of farm() or farm_wait(), or the error a job raised",
         call. = FALSE)
  }
  ptr <- .pesc_results_retry(results$ptr, as.integer(ranks %||% integer()))
  progress_now <- .pesc_job_progress(ptr)
  job <- structure(list(id = results$job_id, repetitions = progress_now[["total"]],
                        mode = if (.pesc_job_warm_runner(ptr)) "function" else "script",
                        domain = NA_character_, task_dir = NULL, farm = NA_character_, ptr = ptr, names = NULL,
                        # the ranks kept: farm_wait() counts the retried ones on top
                        returned = progress_now[["succeeded"]] + progress_now[["failed"]] +
                          progress_now[["cancelled"]]),
                   class = "pesc_job")
  farm_wait(job, progress = progress)
}

#' Follow a rank's output while it runs
#'
#' Reads rank \code{rank}'s \code{output.txt} from the worker running it, as
#' it grows, and hands each new piece to \code{callback} (by default it is
#' printed) until the rank ends. With \code{follow = FALSE} it reads what the
#' rank printed so far, once. A new attempt of the rank (a retry after a
#' failure) starts its output over.
#'
#' @param job what \code{\link{farm_submit}} or \code{\link{farm_attach}}
#'   returned.
#' @param rank a rank, from 0.
#' @param follow keep reading until the rank ends.
#' @param callback a function called with each new piece of text.
#' @return All the text read, invisibly.
#' @examples
#' script <- tempfile(fileext = ".R")
#' writeLines(c('cat("started\\n")', 'Sys.sleep(1)', 'cat("done\\n")'), script)
#' job <- farm_submit(script, repetitions = 1, slots = 1)
#' farm_logs(job, 0)
#' invisible(farm_wait(job, progress = FALSE))
#' @export
farm_logs <- function(job, rank, follow = TRUE, callback = function(text) cat(text)) {
  stopifnot(inherits(job, "pesc_job"))
  log <- .pesc_job_log(job$ptr, as.integer(rank), isTRUE(follow))
  pieces <- character()
  while (!.pesc_log_ended(log)) {
    piece <- .pesc_log_next(log, 250L)  # short waits: an interrupt is noticed between them
    if (is.null(piece) || length(piece) == 0L) next
    text <- rawToChar(piece[piece != as.raw(0)])
    Encoding(text) <- "UTF-8"
    pieces <- c(pieces, text)
    callback(text)
  }
  invisible(paste(pieces, collapse = ""))
}
