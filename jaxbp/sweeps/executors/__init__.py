"""Executors: where a sweep's groups of configs train (this process, or Ray workers)."""
