"""More models on the exact state (lasso, enet, CV, NNLS, Huber); per-group and rolling fits."""
