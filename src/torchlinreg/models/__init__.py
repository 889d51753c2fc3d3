"""More linear models from the exact state: lasso, elastic net, cross-validation, NNLS, Huber."""
