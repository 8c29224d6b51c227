# One rank of a bootstrap with the `boot` package (Debian's r-cran-boot): the
# sampling distribution of the fuel-efficiency cost of weight, the
# coefficient of wt in lm(mpg ~ wt + hp) on R's mtcars.
#
# Rank r of W draws its share of B resamples with its own seed, saves them to
# output_dir/replicates.rds and prints their mean and standard deviation;
# pooling every rank's replicates gives the B-resample bootstrap. Rank 0 of 1
# is the sequential run.
#
#   pesc run --repetitions 16 bootstrap.R -- 4000      # B = 4000 resamples
#   Rscript bootstrap.R --rank 0 --world_size 1 --parameters 4000
args <- commandArgs(trailingOnly = TRUE)
flag <- function(name, default) {
  at <- match(name, args)
  if (is.na(at)) default else args[[at + 1L]]
}
rank <- as.integer(flag("--rank", "0"))
world_size <- as.integer(flag("--world_size", "1"))
output_dir <- flag("--output_dir", file.path(getwd(), "output"))
parameters <- if ("--parameters" %in% args) args[-seq_len(match("--parameters", args))] else character()
if (length(parameters) != 1L) stop("the one parameter is B, the number of resamples")
resamples <- as.integer(parameters[[1]])

# This rank's share: the first B %% W ranks draw one more.
share <- resamples %/% world_size + (rank < resamples %% world_size)
weight_cost <- function(data, rows) coef(lm(mpg ~ wt + hp, data = data[rows, ]))[["wt"]]
set.seed(20231 + rank)
fit <- boot::boot(mtcars, weight_cost, R = share)
dir.create(output_dir, showWarnings = FALSE, recursive = TRUE)
saveRDS(as.vector(fit$t), file.path(output_dir, "replicates.rds"))
cat(sprintf("rank=%d resamples=%d estimate=%.4f mean=%.4f sd=%.4f\n", rank, share, fit$t0, mean(fit$t), sd(fit$t)))
