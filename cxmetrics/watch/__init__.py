"""``cxmetrics watch``: the regression detector run continuously against a Prometheus-API engine
(docs/watch.md). ``watcher`` owns the loop, ``state`` the restart file, ``alertmanager`` the
alerts it sends, ``exposition`` the verdicts it exposes on its own /metrics."""
