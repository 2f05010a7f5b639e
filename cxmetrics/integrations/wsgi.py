"""WSGI middleware (Flask, Django through WSGI, any WSGI app).

::

    app.wsgi_app = CxMiddleware(app.wsgi_app, routes={"GET /bill/detail": ("bill_inquiry",
                                                                          "bill_detail")})

The same behaviour as the ASGI middleware (``cxmetrics.integrations.asgi``): journey context in,
channel, upstream trace context, route-mapped steps measured until ``start_response``, and the
journey context written back on the response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import routes
from ._common import Middleware

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class CxMiddleware(Middleware):
    def framework(self, request: Any) -> tuple[routes.Matcher, set[routes.Key]] | None:
        url_map = routes.flask_url_map(self.app)
        if url_map is None:
            return None
        return (lambda environ: routes.flask_match(url_map, environ)), routes.flask_routes(url_map)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        served = self.begin(environ, method, path, environ)

        def start_wrapper(
            status: str, headers_out: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            extra = served.responding(int(status.split(" ", 1)[0] or 200))
            if extra:
                headers_out = [(k, v) for k, v in headers_out if k.lower() != "baggage"] + extra
            return start_response(status, headers_out, exc_info)

        try:
            body: Iterable[bytes] = self.app(environ, start_wrapper)
            return body
        except BaseException as exc:
            served.failed(exc)
            raise
        finally:
            served.end()
