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
    limit_exceeded = column("limit_exceeded", character(1)),
    failure_class = column("failure_class", character(1)),
    left_out = column("left_out", character(1)),
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
#' @param raw return the bytes (a raw vector) whatever the file holds.
#' @param dir a directory, created when missing.
#' @return \code{rank_output()}: a character string. \code{rank_file()}:
#'   \code{NULL} when the rank left no such file; for a \code{.rds} file, the
#'   object it holds (as \code{\link{readRDS}} reads it: gzip, bzip2, xz or
#'   uncompressed); for a text file (no NUL byte and valid UTF-8), its text
#'   as one string; for any other (binary) file, its bytes as a raw vector,
#'   as with \code{raw = TRUE}.
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
#'
#' keep <- function(rank) {
#'   saveRDS(data.frame(rank = rank), file.path(Sys.getenv("PESC_OUTPUT_DIR"), "frame.rds"))
#'   writeBin(as.raw(0:3), file.path(Sys.getenv("PESC_OUTPUT_DIR"), "bytes.bin"))
#' }
#' res <- farm(keep, repetitions = 2, slots = 2, progress = FALSE)
#' rank_file(res, 1, "frame.rds")
#' rank_file(res, 1, "bytes.bin")
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
  if (is.null(bytes) || raw) return(bytes)
  if (tolower(tools::file_ext(path)) == "rds") return(read_rds_bytes(bytes))
  if (is_text(bytes)) rawToChar(bytes) else bytes
}

# Text is what rawToChar() keeps whole and R can print: no NUL byte, valid UTF-8.
is_text <- function(bytes) {
  !any(bytes == as.raw(0L)) && validUTF8(rawToChar(bytes))
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

#' What a job gained from the farm, and its timeline
#'
#' \code{summary()} gives the job's report from libpesc: wall time, the sum
#' of rank run times, the speedup (their ratio) and efficiency on the slots
#' used, the slot-time lost before, between and after ranks or while a worker was
#' paused, and per worker
#' the ranks it ran, mean and max rank time, retries and lost attempts.
#' Slots are inferred from how many ranks a worker ran at once.
#' \code{plot()} draws the timeline with base graphics, one row per worker
#' slot and a bar per rank; \code{timeline_svg()} gives the same picture as
#' SVG, needing no graphics device.
#'
#' @param object,x,results what \code{\link{farm}} or \code{\link{farm_wait}}
#'   returned.
#' @param file where to write the SVG; \code{NULL} returns it as a string.
#' @param ... unused.
#' @return \code{summary()}: a \code{summary.pesc_results} list with
#'   \code{wall}, \code{rank_time}, \code{speedup}, \code{efficiency},
#'   \code{slots}, \code{lost} (named, seconds), \code{overhead_per_rank},
#'   \code{paused} (seconds in which a worker took no ranks), \code{workers},
#'   \code{timeline} and \code{paused_stretches} (data frames) and \code{text};
#'   \code{plot()}: the timeline data frame, invisibly;
#'   \code{timeline_svg()}: the SVG text, or \code{file} invisibly.
#' @examples
#' script <- tempfile(fileext = ".sh")
#' writeLines("sleep 0.2", script)
#' res <- farm(script, repetitions = 4, slots = 2, progress = FALSE)
#' summary(res)
#' plot(res)
#' @export
summary.pesc_results <- function(object, ...) {
  report <- .pesc_results_report(object$ptr)
  lanes <- report$lanes
  timeline <- as.data.frame(report$timeline, stringsAsFactors = FALSE)
  timeline$slot <- lanes[timeline$lane + 1L]
  structure(c(report$figures,
              list(lanes = lanes, workers = as.data.frame(report$workers, stringsAsFactors = FALSE),
                   timeline = timeline,
                   paused_stretches = as.data.frame(report$paused_stretches, stringsAsFactors = FALSE),
                   text = report$text, svg = report$svg)),
            class = "summary.pesc_results")
}

#' @export
print.summary.pesc_results <- function(x, ...) {
  cat(x$text)
  invisible(x)
}

#' @rdname summary.pesc_results
#' @export
plot.pesc_results <- function(x, ...) {
  s <- summary(x)
  bars <- s$timeline
  lanes <- length(s$lanes)
  colours <- c(succeeded = "#4c78a8", failed = "#e45756")
  old <- graphics::par(mar = c(4.5, max(4, min(12, max(nchar(c("", s$lanes))) * 0.55)), 3, 1))
  on.exit(graphics::par(old))
  graphics::plot(NA, xlim = c(0, max(s$wall, 1e-3)), ylim = c(lanes + 0.5, 0.5), yaxt = "n", xaxs = "i",
                 xlab = "seconds since the job was submitted", ylab = "",
                 main = sprintf("job %s: %d ranks, wall %.3f s, speedup %.2f on %d slots (efficiency %.0f%%)",
                                s$job_id, s$ranks, s$wall, s$speedup, s$slots, 100 * s$efficiency),
                 cex.main = 0.85)
  if (nrow(bars) > 0L) {
    # Where no rank ran: before the first start and after the last end.
    graphics::rect(c(0, max(bars$end)), 0.5, c(min(bars$start), s$wall), lanes + 0.5, col = "#fde7c9", border = NA)
    # A paused worker's lanes, hatched grey behind its ranks, as in the SVG.
    paused <- s$paused_stretches
    if (nrow(paused) > 0L) {
      graphics::rect(paused$start, paused$first_lane + 0.5, paused$end, paused$first_lane + paused$lanes + 0.5,
                     col = "#d9d9d9", border = NA)
      graphics::rect(paused$start, paused$first_lane + 0.5, paused$end, paused$first_lane + paused$lanes + 0.5,
                     density = 12, angle = 45, col = "#8c8c8c", border = NA)
    }
    fill <- ifelse(bars$status %in% names(colours), colours[bars$status], "#9d9d9d")
    graphics::rect(bars$start, bars$lane + 0.6, bars$end, bars$lane + 1.4, col = fill, border = "white")
    wide <- lanes <= 30L & bars$end - bars$start > 0.03 * s$wall
    graphics::text((bars$start + bars$end)[wide] / 2, bars$lane[wide] + 1, bars$rank[wide], col = "white", cex = 0.7)
  }
  if (lanes <= 40L) {
    graphics::axis(2, at = seq_len(lanes), labels = s$lanes, las = 1, cex.axis = 0.7)
  } else {
    graphics::axis(2, at = s$workers$first_lane + 1L, labels = s$workers$worker, las = 1, cex.axis = 0.7)
  }
  invisible(bars)
}

#' @rdname summary.pesc_results
#' @export
timeline_svg <- function(results, file = NULL) {
  stopifnot(inherits(results, "pesc_results"))
  svg <- summary(results)$svg
  if (is.null(file)) return(svg)
  writeLines(svg, file, sep = "")
  invisible(file)
}
