"""Grouped cross-validation, threshold tuning and metrics."""
