"""Results of exact fits: statistics, covariances, predictions, summary tables, metrics."""
