"""Evaluation: scoring held-out texts, metrics, plots and reports."""
