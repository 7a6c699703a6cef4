"""conflict-claims: sentence classifiers for claims, attribution and withdrawals in conflict news."""

__version__ = "0.1.0"
