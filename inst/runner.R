# pesc function-mode runner: one rank calls f(rank, ...) and leaves the value,
# or the error it raised, in PESC_OUTPUT_DIR/result.rds for the client.
local({
  `%||%` <- function(x, y) if (is.null(x)) y else x
  out_dir <- Sys.getenv("PESC_OUTPUT_DIR", "output")
  rank <- as.integer(Sys.getenv("PESC_RANK", "0"))
  task <- readRDS(file.path(Sys.getenv("PESC_APP_DIR", "."), "task.rds"))
  outcome <- tryCatch({
    for (p in task$packages) suppressPackageStartupMessages(library(p, character.only = TRUE))
    list2env(task$globals, envir = globalenv())
    # Call by names, so that an error's call reads f(rank, n = n), not the
    # deparsed function and values.
    env <- new.env(parent = globalenv())
    env$f <- task$f
    env$rank <- rank
    call <- list(as.name("f"), as.name("rank"))
    arg_names <- names(task$args) %||% rep("", length(task$args))
    for (i in seq_along(task$args)) {
      var <- if (nzchar(arg_names[i]) && !arg_names[i] %in% c("f", "rank")) arg_names[i] else paste0(".arg", i)
      assign(var, task$args[[i]], envir = env)
      call[[length(call) + 1L]] <- as.name(var)
    }
    names(call) <- c("", "", arg_names)
    list(ok = TRUE, value = eval(as.call(call), env))
  }, error = function(e) {
    list(ok = FALSE, message = conditionMessage(e), class = class(e),
         call = if (is.null(conditionCall(e))) NULL else paste(deparse(conditionCall(e)), collapse = "\n"))
  })
  saveRDS(outcome, file.path(out_dir, "result.rds"))
  if (!outcome$ok) {
    message("Error in rank ", rank, ": ", outcome$message)
    quit(save = "no", status = 1)
  }
})
