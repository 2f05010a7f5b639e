"""The version of cxmetrics (one place; ``cxmetrics.__version__``)."""

__version__ = "0.1.0"
