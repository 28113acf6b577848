"""Training: strategies, feature cache, metrics, plots and the run directory."""
