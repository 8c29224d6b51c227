# pesc function-mode runner: a rank calls f(rank, ...) and leaves the value,
# or the error it raised, in PESC_OUTPUT_DIR/result.rds for the client.
#
# With PESC_RUNNER_FDS set, the worker keeps this R process warm and feeds it
# rank after rank over the runner protocol (libpesc/executor/warm_runner.h):
# "rank<TAB>r<TAB>output_dir<TAB>checkpoint_dir" lines on the first
# descriptor, each answered by "done<TAB>status" on the second; a small
# result comes with the answer instead ("done<TAB>status<TAB>result.rds<TAB>
# size" and its bytes), and the worker adds it to the rank's output, which
# spares a file per rank. Without it, the rank is PESC_RANK and R exits when
# it is done.
local({
  `%||%` <- function(x, y) if (is.null(x)) y else x

  task <- readRDS(file.path(Sys.getenv("PESC_APP_DIR", "."), "task.rds"))
  loaded <- tryCatch({
    for (p in task$packages) suppressPackageStartupMessages(library(p, character.only = TRUE))
    list2env(task$globals, envir = globalenv())
    NULL
  }, error = function(e) e)

  # Call by names, so that an error's call reads f(rank, n = n), not the
  # deparsed function and values. The call is built once; each rank gets a
  # fresh environment holding the function and the arguments.
  arg_names <- names(task$args) %||% rep("", length(task$args))
  arg_vars <- ifelse(nzchar(arg_names) & !arg_names %in% c("f", "rank"), arg_names,
                     paste0(".arg", seq_along(task$args)))
  the_call <- as.call(c(list(as.name("f"), as.name("rank")), lapply(arg_vars, as.name)))
  names(the_call) <- c("", "", arg_names)
  bindings <- c(list(f = task$f), stats::setNames(task$args, arg_vars))

  # With a job seed (PESC_SEED), rank r draws from L'Ecuyer-CMRG stream r of
  # it, the stream future.apply's future.seed gives element r + 1, whatever
  # slot, chunk or attempt runs the rank. Ranks mostly come in order, so the
  # last stream reached is kept and stepped on from.
  seed <- Sys.getenv("PESC_SEED")
  reached <- NULL
  seed_rank <- function(rank) {
    if (!nzchar(seed)) return(invisible())
    if (is.null(reached) || reached$rank > rank) {
      RNGkind("L'Ecuyer-CMRG")
      set.seed(as.integer(seed))
      reached <<- list(rank = 0L, stream = get(".Random.seed", envir = globalenv()))
    }
    stream <- reached$stream
    for (i in seq_len(rank - reached$rank)) stream <- parallel::nextRNGStream(stream)
    reached <<- list(rank = rank, stream = stream)
    assign(".Random.seed", parallel::nextRNGSubStream(stream), envir = globalenv())
  }

  call_f <- function(rank) {
    if (!is.null(loaded)) stop(loaded)
    seed_rank(rank)
    env <- list2env(bindings, envir = new.env(parent = globalenv()))
    env$rank <- rank
    eval(the_call, env)
  }

  # Runs one rank: its status (0 when it succeeded) and, when `piped` and
  # the result is small, the result's bytes to hand over; else the result
  # is in out_dir/result.rds.
  run_rank <- function(rank, out_dir, piped = FALSE) {
    outcome <- tryCatch(list(ok = TRUE, value = call_f(rank)), error = function(e) {
      list(ok = FALSE, message = conditionMessage(e), class = class(e),
           call = if (is.null(conditionCall(e))) NULL else paste(deparse(conditionCall(e)), collapse = "\n"))
    })
    status <- if (outcome$ok) 0L else 1L
    if (!outcome$ok) message("Error in rank ", rank, ": ", outcome$message)
    # gzip costs more than it saves on the small values most ranks return.
    small <- utils::object.size(outcome) <= 65536
    if (piped && small) return(list(status = status, bytes = serialize(outcome, NULL)))
    saveRDS(outcome, file.path(out_dir, "result.rds"), compress = !small)
    list(status = status, bytes = NULL)
  }

  # Runs work() with what R prints (output and messages) appended to path.
  with_output_to <- function(path, work) {
    out <- file(path, open = "at")
    sink(out)
    sink(out, type = "message")
    on.exit({
      sink(type = "message")
      sink()
      close(out)
    })
    work()
  }

  serve <- function(descriptors) {
    fds <- strsplit(descriptors, ",", fixed = TRUE)[[1]]
    commands <- file(paste0("/dev/fd/", fds[1]), open = "r")
    answers <- file(paste0("/dev/fd/", fds[2]), open = "wb")
    repeat {
      line <- readLines(commands, n = 1L)
      if (length(line) == 0L) break
      fields <- strsplit(line, "\t", fixed = TRUE)[[1]]
      if (length(fields) != 4L || fields[1] != "rank") next
      rank <- fields[2]
      Sys.setenv(PESC_RANK = rank, RANK = rank, SLURM_ARRAY_TASK_ID = rank, PBS_ARRAYID = rank,
                 PESC_OUTPUT_DIR = fields[3], PESC_CHECKPOINT_DIR = fields[4])
      ran <- with_output_to(file.path(fields[3], "output.txt"),
                            function() run_rank(as.integer(rank), fields[3], piped = TRUE))
      if (is.null(ran$bytes)) {
        writeBin(charToRaw(sprintf("done\t%d\n", ran$status)), answers)
      } else {
        header <- sprintf("done\t%d\tresult.rds\t%d\n", ran$status, length(ran$bytes))
        writeBin(c(charToRaw(header), ran$bytes), answers)
      }
      flush(answers)
    }
  }

  descriptors <- Sys.getenv("PESC_RUNNER_FDS")
  if (nzchar(descriptors)) {
    serve(descriptors)
  } else {
    ran <- run_rank(as.integer(Sys.getenv("PESC_RANK", "0")), Sys.getenv("PESC_OUTPUT_DIR", "output"))
    if (ran$status != 0L) quit(save = "no", status = ran$status)
  }
})
