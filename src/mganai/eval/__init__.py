"""Evaluation: the oracle and the metrics every method is scored with."""
