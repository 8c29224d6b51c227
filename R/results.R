# The results of a finished job: every rank's row, its output and its files.

new_results <- function(ptr) {
  rows <- .pesc_results_ranks(ptr)
  column <- function(name, type) vapply(rows, function(r) r[[name]], type)
  as_time <- function(x) as.POSIXct(ifelse(x > 0, x, NA_real_), origin = "1970-01-01")
  ranks <- data.frame(
    rank = column("rank", integer(1)),
    status = column("status", character(1)),
    exit_code = column("exit_code", integer(1)),
    signal = column("signal", integer(1)),
    worker = column("worker", character(1)),
    start = as_time(column("start", numeric(1))),
    end = as_time(column("end", numeric(1))),
    duration = column("duration", numeric(1)),
    cpu_time = column("cpu_time", numeric(1)),
    max_rss_kb = column("max_rss_kb", numeric(1)),
    error = column("error", character(1)),
    stringsAsFactors = FALSE)
  structure(list(job_id = .pesc_results_job_id(ptr), output = .pesc_results_output(ptr), ranks = ranks,
                 rank_outputs = column("output", character(1)), ptr = ptr),
            class = "pesc_results")
}

#' One rank's output, or a file it left
#'
#' \code{rank_output()} is everything rank \code{rank} printed (its
#' \code{output.txt}). \code{rank_file()} reads a file the rank wrote in its
#' output directory (\code{PESC_OUTPUT_DIR}, or \code{--output_dir}).
#' \code{farm_save()} writes every rank's output directory to
#' \code{dir/rank_<r>/} and the joined output to \code{dir/output.txt}.
#'
#' @param results what \code{\link{farm}} or \code{\link{farm_wait}} returned.
#' @param rank a rank, from 0.
#' @param path a path relative to the rank's output directory.
#' @param raw return the bytes (a raw vector) instead of text.
#' @param dir a directory, created when missing.
#' @return \code{rank_output()}: a character string. \code{rank_file()}: the
#'   file's text (or bytes), \code{NULL} when the rank left no such file.
#'   \code{farm_save()}: \code{dir}, invisibly.
#' @examples
#' script <- tempfile(fileext = ".R")
#' writeLines(c(
#'   'out <- Sys.getenv("PESC_OUTPUT_DIR")',
#'   'writeLines("kept", file.path(out, "note.txt"))',
#'   'cat("hello from rank", Sys.getenv("PESC_RANK"), "\\n")'), script)
#' res <- farm(script, repetitions = 2, slots = 2, progress = FALSE)
#' rank_output(res, 1)
#' rank_file(res, 0, "note.txt")
#' @export
rank_output <- function(results, rank) {
  rank <- check_rank(results, rank)
  results$rank_outputs[[rank + 1L]]
}

#' @rdname rank_output
#' @export
rank_file <- function(results, rank, path, raw = FALSE) {
  rank <- check_rank(results, rank)
  bytes <- .pesc_results_read_file(results$ptr, rank, path)
  if (is.null(bytes) || raw) bytes else rawToChar(bytes)
}

#' @rdname rank_output
#' @export
farm_save <- function(results, dir) {
  stopifnot(inherits(results, "pesc_results"))
  .pesc_results_save(results$ptr, path.expand(dir))
  invisible(dir)
}

check_rank <- function(results, rank) {
  stopifnot(inherits(results, "pesc_results"))
  n <- nrow(results$ranks)
  if (!is.numeric(rank) || length(rank) != 1L || is.na(rank) || rank < 0 || rank >= n || rank != round(rank)) {
    stop(sprintf("pesc: `rank` must be a whole number from 0 to %d", n - 1L), call. = FALSE)
  }
  as.integer(rank)
}

#' @export
print.pesc_results <- function(x, ...) {
  counts <- table(factor(x$ranks$status, levels = c("succeeded", "failed", "cancelled")))
  cat(sprintf("<pesc results of job %s: %d ranks, %d succeeded, %d failed, %d cancelled>\n", x$job_id,
              nrow(x$ranks), counts[["succeeded"]], counts[["failed"]], counts[["cancelled"]]))
  if (!is.null(x$values)) cat("values: a list of", length(x$values), "\n")
  cat("output (first lines):\n")
  lines <- strsplit(x$output, "\n", fixed = TRUE)[[1]]
  writeLines(paste0("  ", utils::head(lines, 6L)))
  if (length(lines) > 6L) cat(sprintf("  ... %d more lines in $output\n", length(lines) - 6L))
  invisible(x)
}

#' @export
summary.pesc_results <- function(object, ...) {
  r <- object$ranks
  by_worker <- if (nrow(r) > 0L) {
    stats::aggregate(cbind(ranks = 1, duration = r$duration) ~ worker, data = r, FUN = sum)
  } else {
    NULL
  }
  structure(list(job_id = object$job_id, ranks = nrow(r), status = table(r$status),
                 duration = summary(r$duration), cpu_time = sum(r$cpu_time),
                 wall = if (nrow(r) > 0L) as.numeric(difftime(max(r$end, na.rm = TRUE),
                                                             min(r$start, na.rm = TRUE), units = "secs"))
                        else 0,
                 by_worker = by_worker),
            class = "summary.pesc_results")
}

#' @export
print.summary.pesc_results <- function(x, ...) {
  cat(sprintf("pesc job %s: %d ranks\n", x$job_id, x$ranks))
  print(x$status)
  cat(sprintf("wall time %.2f s, total CPU time %.2f s\nrank duration (s):\n", x$wall, x$cpu_time))
  print(x$duration)
  if (!is.null(x$by_worker)) {
    cat("per worker:\n")
    print(x$by_worker, row.names = FALSE)
  }
  invisible(x)
}
