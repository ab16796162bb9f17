"""Sweeps on top of training: specs, the spool, the sweep run, its executors, MLflow tracking and plots.
Imports training and the core, MLflow and matplotlib; never the app."""
