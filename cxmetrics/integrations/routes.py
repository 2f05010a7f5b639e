"""Route maps: which step a request marks, decided by the route the framework itself matched.

A route map is keyed by ``"METHOD <template>"``, the template written as the framework declares
it — ``/cards/{card_id}/enter`` (Starlette, FastAPI), ``/cards/<card_id>/enter`` (Flask) — or in
either spelling: parameters are compared by name only (``{id:int}``, ``<int:id>`` and ``{id}`` are
the same). A map without parameters is looked up by the literal request path. A map with
parameters asks the framework's own router which route serves the request, so its precedence
holds (``/cards/new`` declared before ``/cards/{card_id}`` wins):

- Starlette / FastAPI (ASGI): the app's ``router.routes`` are matched in order, as the router
  does, including ``Mount``\\ s (their prefix joins the template);
- Flask (WSGI, middleware around ``app.wsgi_app``): the app's ``url_map``;
- Django through WSGI: not matched by template; map literal paths.

Targets are checked against the configured spec when the map is built (a misspelled journey or
step raises ``ValueError`` with a suggestion). At the first request the map is compared with the
app's routes; a mapped route the app does not have is logged once, since its step would never be
recorded.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..instrument.state import STATE, log

RouteMap = Mapping[str, tuple[str, str]]
"""``{"POST /cards/{card_id}/enter": ("card_activation", "enter_card")}``: a route's step."""

Target = tuple[str, str]
Key = tuple[str, str]
Matcher = Callable[[Any], "tuple[str, str] | None"]
"""Finds (method, template) of the route the framework serves a request with (ASGI scope or
WSGI environ), or ``None`` when no route matches."""

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|<(?:[^:>]+:)?([A-Za-z_][\w]*)>")


@functools.lru_cache(maxsize=1024)
def template(path: str) -> str:
    """``path`` with each parameter spelled ``{name}``, whatever the framework's syntax."""
    return _PARAMETER.sub(lambda m: "{" + (m.group(1) or m.group(2)) + "}", path)


def parse_routes(routes: RouteMap | None) -> dict[Key, Target]:
    """The map keyed by (METHOD, template); targets checked against the configured spec."""
    out: dict[Key, Target] = {}
    for key, target in (routes or {}).items():
        method, _, path = key.strip().partition(" ")
        path = path.strip()
        if not path.startswith("/") or len(target) != 2:
            raise ValueError(
                f"route {key!r}: write 'METHOD /path': ('journey', 'step'), "
                "e.g. 'POST /cards/{card_id}/enter': ('card_activation', 'enter_card')"
            )
        _check_target(key, target[0], target[1])
        out[(method.upper(), template(path))] = (target[0], target[1])
    return out


def _check_target(key: str, journey: str, step: str) -> None:
    runtime = STATE.runtime
    if runtime is None:  # not configured yet: undeclared names are counted when recorded
        return
    journeys = {j.name: j for j in runtime.spec.journeys}
    if journey not in journeys:
        raise ValueError(f"route {key!r}: unknown journey {journey!r}{_suggest(journey, journeys)}")
    steps = journeys[journey].step_names
    if step not in steps:
        raise ValueError(
            f"route {key!r}: unknown step {step!r} in journey {journey!r}{_suggest(step, steps)}"
        )


def _suggest(name: str, valid: Iterable[str]) -> str:
    candidates = list(valid)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; declared: {', '.join(candidates)}"


def has_parameters(routes: Mapping[Key, Target]) -> bool:
    return any("{" in path for _, path in routes)


def report_unserved(routes: Mapping[Key, Target], served: set[Key]) -> None:
    """Log once each mapped route that none of the app's routes serves."""
    known = [f"{method} {path}" for method, path in sorted(served)]
    for (method, path), (journey, step) in routes.items():
        if (method, path) not in served:
            key = f"{method} {path}"
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            log.warning(
                "route map: %r matches no route of the app%s; its step '%s/%s' is never recorded",
                key,
                hint,
                journey,
                step,
            )


# Starlette / FastAPI ---------------------------------------------------------------------------


def starlette_router(app: Any) -> Any | None:
    """The Starlette router serving ``app`` (a Starlette/FastAPI app or a router), if any."""
    router = getattr(app, "router", app)
    return router if isinstance(getattr(router, "routes", None), list) else None


def starlette_routes(router: Any, prefix: str = "") -> set[Key]:
    out: set[Key] = set()
    for route in router.routes:
        path = prefix + getattr(route, "path", "")
        if isinstance(getattr(route, "routes", None), list) and not hasattr(route, "methods"):
            out |= starlette_routes(route, path)
        else:
            for method in getattr(route, "methods", None) or ():
                out.add((method, template(path)))
    return out


def starlette_matcher(router: Any) -> Matcher:
    """The route Starlette's ``router`` serves a scope with, matched in the router's order.

    A plain ``Route`` is matched by its path regex and methods, as ``Route.matches`` does without
    building the child scope (that halves the cost of the lookup, ``bench_middleware.py``); mounts,
    hosts and other route types are asked with their own ``matches``."""
    from starlette.routing import Match, Route

    def match(routes: list[Any], scope: Any, prefix: str) -> Key | None:
        method = scope.get("method", "GET")
        plain = None if scope.get("root_path") else scope["path"]
        for route in routes:
            if plain is not None and type(route) is Route:
                if route.path_regex.match(plain) and (not route.methods or method in route.methods):
                    return (method, template(prefix + route.path))
                continue
            found, child = route.matches(scope)
            if found is not Match.FULL:
                continue
            path = prefix + getattr(route, "path", "")
            inner = getattr(route, "routes", None)
            if isinstance(inner, list) and not hasattr(route, "methods"):  # a Mount
                return match(inner, {**scope, **child}, path)
            return (method, template(path))
        return None

    return lambda scope: match(router.routes, scope, "")


# Flask -----------------------------------------------------------------------------------------


def flask_url_map(app: Any) -> Any | None:
    """The Werkzeug ``url_map`` of the Flask app whose ``wsgi_app`` is ``app``, if any."""
    owner = getattr(app, "__self__", app)
    url_map = getattr(owner, "url_map", None)
    return url_map if hasattr(url_map, "bind_to_environ") else None


def flask_routes(url_map: Any) -> set[Key]:
    return {
        (method, template(rule.rule)) for rule in url_map.iter_rules() for method in rule.methods
    }


def flask_match(url_map: Any, environ: Any) -> Key | None:
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import RequestRedirect

    try:
        rule, _ = url_map.bind_to_environ(environ).match(return_rule=True)
    except (HTTPException, RequestRedirect):
        return None
    return (environ.get("REQUEST_METHOD", "GET"), template(rule.rule))
