"""Service B (WSGI, Flask under wsgiref's real server): bill_detail (route-mapped) and /audit.

Usage: ``python -m tests.helpers.service_b SPEC PORT SPANS_FILE``.
"""

from __future__ import annotations

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask, jsonify
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

import cxmetrics
from cxmetrics.integrations.wsgi import CxMiddleware

from .spans_to_file import install


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def build() -> Flask:
    app = Flask("service_b")

    @app.get("/bill/detail")
    def detail():  # type: ignore[no-untyped-def]
        return jsonify({"lines": [100, 23]})

    @app.get("/audit")
    def audit():  # type: ignore[no-untyped-def]
        j = cxmetrics.journey("bill_inquiry")
        span = trace.get_current_span().get_span_context()
        return jsonify(
            {
                "journey_id": j.journey_id,
                "last_step": j.last_step,
                "trace_id": format(span.trace_id, "032x"),
            }
        )

    @app.get("/metrics")
    def metrics():  # type: ignore[no-untyped-def]
        return generate_latest(REGISTRY), 200, {"Content-Type": CONTENT_TYPE_LATEST}

    app.wsgi_app = CxMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, routes={"GET /bill/detail": ("bill_inquiry", "bill_detail")}
    )
    return app


if __name__ == "__main__":
    spec, port, spans_file = sys.argv[1:4]
    tracer = install(spans_file)
    cxmetrics.configure(spec, spans="always", tracer=tracer, strict=True)
    make_server(
        "127.0.0.1", int(port), build(), server_class=ThreadingServer, handler_class=Quiet
    ).serve_forever()
