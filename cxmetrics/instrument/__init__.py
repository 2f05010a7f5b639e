"""The hot path inside the host app: the configured runtime, pre-bound slots, journey instances
and steps, fingerprints, customer references, record types, spans and the sink protocol. Nothing
here raises into the app.
"""
