"""What the framework middlewares cost per request, against the same app without them.

ASGI: a Starlette route returning a small JSON body, called in-process (no sockets, no server:
only the app and the middleware are measured) with the headers a browser-like client sends plus
the journey context in ``baggage``; bare vs wrapped in ``cxmetrics.integrations.asgi.CxMiddleware``
with the route mapped to a step; and the same with a path parameter (``/bill/{period}/total``),
behind four other routes, mapped by its template, so the middleware matches Starlette's routes
once more. WSGI: a plain WSGI callable, bare vs wrapped in
``cxmetrics.integrations.wsgi.CxMiddleware``. Rounds alternate bare and wrapped; the best round of
each is kept (the machine is noisy). cxmetrics is configured with the example spec, spans
``interesting`` through the OpenTelemetry SDK. The wrapped apps run twice per round: with a
context key (the incoming ``baggage`` is signed, verified, resumed and the response signed) and
without one (the incoming context is ignored, a new instance starts, nothing is signed); the
difference is what authentication costs.

Run: ``python benchmarks/bench_middleware.py`` (``--rounds``, ``--requests``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _asgi import http_scope  # noqa: E402

BAGGAGE = (
    b"cx.journey=bill_inquiry,cx.id=abababababababababababababababab,cx.step=login,cx.channel=app"
)
HEADERS = [
    (b"host", b"bank.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64)"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"baggage", BAGGAGE),
]
ROUTES = {"GET /bill/total": ("bill_inquiry", "bill_total")}


TEMPLATED = {"GET /bill/{period}/total": ("bill_inquiry", "bill_total")}
PATHS = {"asgi": "/bill/total", "asgi templated": "/bill/2026-12/total"}


def asgi_apps() -> dict[str, Any]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from cxmetrics.integrations.asgi import CxMiddleware

    async def total(request: Request) -> JSONResponse:
        return JSONResponse({"total": "412.37"})

    # a few other routes first, as a real app has: the templated lookup walks them in order
    others = [Route(f"/other/{k}/{{x}}", total) for k in range(4)]
    bare = Starlette(routes=[Route("/bill/total", total)])
    wrapped = Starlette(routes=[Route("/bill/total", total)])
    wrapped.add_middleware(CxMiddleware, routes=ROUTES)
    bare_t = Starlette(routes=[*others, Route("/bill/{period}/total", total)])
    wrapped_t = Starlette(routes=[*others, Route("/bill/{period}/total", total)])
    wrapped_t.add_middleware(CxMiddleware, routes=TEMPLATED)
    return {
        "asgi bare": bare,
        "asgi wrapped": wrapped,
        "asgi templated bare": bare_t,
        "asgi templated wrapped": wrapped_t,
    }


async def drive_asgi(app: Any, n: int, path: str) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    start = time.process_time()
    for _ in range(n):
        scope = http_scope(path, HEADERS)
        await app(scope, receive, send)
    return (time.process_time() - start) / n * 1e6


def wsgi_apps() -> tuple[Any, Any]:
    from cxmetrics.integrations.wsgi import CxMiddleware

    def total(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = b'{"total": "412.37"}'
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return total, CxMiddleware(total, routes=ROUTES)


def drive_wsgi(app: Any, n: int) -> float:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    base = {"HTTP_" + k.decode().upper().replace("-", "_"): v.decode() for k, v in HEADERS}
    start = time.process_time()
    for _ in range(n):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/bill/total", **base}
        for _chunk in app(environ, start_response):
            pass
    return (time.process_time() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    args = parser.parse_args()

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    import cxmetrics
    from cxmetrics.propagation.codec import decode, encode
    from cxmetrics.propagation.integrity import ContextKeys
    from cxmetrics.spec.load import load_spec
    from examples.bank.app import SPEC_PATH

    trace.set_tracer_provider(TracerProvider())
    spec = load_spec(SPEC_PATH)
    key = b"bench-context-key-0123456789abcdef"
    context = decode(BAGGAGE.decode())
    assert context is not None
    signed = encode(context, "", ContextKeys({"k1": key}).mac).encode()  # type: ignore[arg-type]

    def mode(keyed: bool) -> None:
        """Configure with or without the key; the request's baggage signed or not to match."""
        cxmetrics.configure(
            spec,
            registry=CollectorRegistry(),
            spans="interesting",
            context_key=key if keyed else None,
        )
        HEADERS[-1] = (b"baggage", signed if keyed else BAGGAGE)

    os.environ.pop("CXMETRICS_CONTEXT_KEY", None)
    mode(False)
    asgi = asgi_apps()
    wsgi_bare, wsgi_wrapped = wsgi_apps()
    gc.collect()
    gc.freeze()
    best: dict[str, float] = {}

    async def asgi_rounds() -> None:
        for _ in range(args.rounds):
            for name, app, keyed in (
                ("asgi bare", asgi["asgi bare"], False),
                ("asgi wrapped", asgi["asgi wrapped"], False),
                ("asgi keyed", asgi["asgi wrapped"], True),
                ("asgi templated bare", asgi["asgi templated bare"], False),
                ("asgi templated wrapped", asgi["asgi templated wrapped"], False),
            ):
                mode(keyed)
                path = PATHS["asgi templated" if "templated" in name else "asgi"]
                micros = await drive_asgi(app, args.requests, path)
                best[name] = min(best.get(name, micros), micros)

    asyncio.run(asgi_rounds())
    for _ in range(args.rounds):
        for name, app, keyed in (
            ("wsgi bare", wsgi_bare, False),
            ("wsgi wrapped", wsgi_wrapped, False),
            ("wsgi keyed", wsgi_wrapped, True),
        ):
            mode(keyed)
            micros = drive_wsgi(app, args.requests)
            best[name] = min(best.get(name, micros), micros)
    print(
        f"in-process, best of {args.rounds} rounds × {args.requests} requests, CPU time per "
        "request (spans 'interesting', OpenTelemetry SDK installed)"
    )
    for kind, what in (("asgi", "Starlette route"), ("wsgi", "WSGI callable")):
        bare_us, wrapped_us, keyed_us = (best[f"{kind} {m}"] for m in ("bare", "wrapped", "keyed"))
        print(
            f"  {kind.upper()}: {what} {bare_us:6.1f} us, with CxMiddleware {wrapped_us:6.1f} us "
            f"without a context key, {keyed_us:6.1f} us with one: +{wrapped_us - bare_us:5.1f} / "
            f"+{keyed_us - bare_us:5.1f} us per request, ratio bare/wrapped "
            f"{bare_us / wrapped_us:.3f} / {bare_us / keyed_us:.3f}; "
            f"authentication {keyed_us - wrapped_us:+5.1f} us"
        )
    bare, wrapped = best["asgi templated bare"], best["asgi templated wrapped"]
    print(
        f"  ASGI: Starlette route by template {bare:6.1f} us, with CxMiddleware {wrapped:6.1f} us "
        f"without a context key: +{wrapped - bare:5.1f} us per request"
    )
    cxmetrics.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
