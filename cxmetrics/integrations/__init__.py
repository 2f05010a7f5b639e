"""Framework integrations: journeys that cross requests, processes and channels.

- ``asgi.CxMiddleware`` (Starlette, FastAPI, any ASGI app) and ``wsgi.CxMiddleware`` (Flask,
  Django through WSGI, any WSGI app): read the journey context of each request, make it the
  context ``cxmetrics.journey()`` resumes, write it back on the response, and optionally mark
  route-mapped steps without touching handler code.
- ``httpx`` / ``requests``: outgoing propagation, so a downstream service continues the same
  journey instance (and the same trace).
"""

from .routes import RouteMap

__all__ = ["RouteMap"]
