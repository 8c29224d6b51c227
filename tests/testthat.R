library(testthat)
library(pesc)

test_check("pesc")
