#' pesc: run sequential R code many times on a farm of machines
#'
#' Farm out an R script or an R function as ranks \code{0..N-1} to an
#' embedded local farm or to a \code{pesc-coordinator} and its workers, and
#' get every rank's output (and, for functions, every rank's value) back in
#' rank order. The farm is libpesc, the C++ library behind the \code{pesc}
#' command line; this package is a thin layer over it.
#'
#' @seealso \code{\link{farm}}, \code{\link{farm_lapply}}, \code{\link{farm_map}},
#'   \code{\link{pesc_farm}},
#'   \code{\link{farm_submit}}, \code{\link{rank_output}}
#' @useDynLib pesc, .registration = TRUE
#' @importFrom Rcpp evalCpp
#' @keywords internal
"_PACKAGE"
