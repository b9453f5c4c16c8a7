"""Tenure: open-source customer-success intelligence."""

__version__ = "0.1.0"
