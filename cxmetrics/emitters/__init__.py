"""Where recorded steps go: Prometheus (``prometheus``), OpenTelemetry spans (``otel``), and sinks
for whole records (``memory`` for tests and embedded use, ``eventlog`` for JSONL files)."""

from .base import Sink

__all__ = ["Sink"]
