"""Getting recorded data out of the process: the Prometheus collector over the slots, the
standalone ``/metrics`` server, the JSONL event log and the in-memory recorder.
"""
