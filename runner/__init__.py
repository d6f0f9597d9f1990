"""Wiring: configuration, the run folder, metrics, and the training loops."""
