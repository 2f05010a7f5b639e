"""Real components on this machine: Prometheus and Alertmanager processes on loopback (``stack``)
and the example bank end to end (``demo``).
"""
