"""From recorded data to judgements: sources (recorder, event log, Prometheus) reduced to windowed
counts, the indicator catalogue and its math, the regression detector, period comparisons and the
per-step analyzer.
"""
