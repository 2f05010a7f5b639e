"""Route maps keyed by the framework's route template (path parameters), with real servers:
Starlette under uvicorn, Flask under Werkzeug's WSGI server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from cxmetrics.integrations import asgi, wsgi
from cxmetrics.local.stack import free_port
from cxmetrics.testing import Recording, recording
from tests.helpers.paths import ROOT
from tests.helpers.servers import serve_app

SPEC = ROOT / "tests" / "data" / "card_activation.yaml"
ROUTES = {
    "POST /cards/{card_id}/enter": ("card_activation", "enter_card"),
    "POST /cards/{card_id}/otp": ("card_activation", "verify_otp"),
}


@pytest.fixture
def cx() -> Iterator[Recording]:
    rec = recording(str(SPEC))
    try:
        yield rec
    finally:
        rec.close()


def starlette_app(routes: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def enter(request: Any) -> Any:
        return JSONResponse({"card": request.path_params["card_id"]})

    async def new_card(request: Any) -> Any:
        return JSONResponse({"card": "new"})

    app = Starlette(
        routes=[
            Route("/cards/new/enter", new_card, methods=["POST"]),
            Route("/cards/{card_id}/enter", enter, methods=["POST"]),
            Route("/cards/{card_id:int}/otp", enter, methods=["POST"]),
        ]
    )
    app.add_middleware(asgi.CxMiddleware, routes=routes)
    return app


def flask_app(routes: Any) -> Any:
    from flask import Flask

    app = Flask("cards")

    @app.post("/cards/<card_id>/enter")
    def enter(card_id: str) -> dict[str, str]:
        return {"card": card_id}

    @app.post("/cards/<int:card_id>/otp")
    def otp(card_id: int) -> dict[str, int]:
        return {"card": card_id}

    app.wsgi_app = wsgi.CxMiddleware(app.wsgi_app, routes=routes)  # type: ignore[method-assign]
    return app


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@contextmanager
def served(framework: str, routes: Any) -> Iterator[str]:
    if framework == "starlette":
        with serve_app(starlette_app(routes), free_port()) as url:
            yield url
    else:
        with serve_wsgi(flask_app(routes)) as url:
            yield url


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_route_templates_with_path_parameters_record_steps_and_send_baggage(
    cx: Recording, framework: str
) -> None:
    with served(framework, ROUTES) as url:
        first = httpx.post(url + "/cards/4242/enter")
        second = httpx.post(url + "/cards/17/otp", headers={"baggage": first.headers["baggage"]})
        other = httpx.post(url + "/cards/17/otp/", headers={"baggage": first.headers["baggage"]})
    assert (first.status_code, second.status_code) == (200, 200)
    assert other.status_code in (404, 307, 308)
    assert "baggage" in second.headers
    assert cx.recorder.step_names("card_activation") == ["enter_card", "verify_otp"]
    assert [s.journey_id for s in cx.recorder.steps] == [cx.recorder.steps[0].journey_id] * 2


@pytest.mark.slow
def test_the_frameworks_own_precedence_decides_which_route_matched(cx: Recording) -> None:
    # /cards/new/enter is declared before /cards/{card_id}/enter: Starlette serves it there,
    # so the step mapped to the template must not be recorded.
    with served("starlette", ROUTES) as url:
        assert httpx.post(url + "/cards/new/enter").json() == {"card": "new"}
        assert httpx.post(url + "/cards/9/enter").json() == {"card": "9"}
    assert cx.recorder.step_names("card_activation") == ["enter_card"]


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_a_misspelled_step_in_a_route_map_is_refused_at_construction(
    cx: Recording, framework: str
) -> None:
    routes = {"POST /cards/{card_id}/enter": ("card_activation", "enter_crad")}
    with pytest.raises(ValueError) as caught:
        starlette_app(routes) if framework == "starlette" else flask_app(routes)
        if framework == "starlette":
            starlette_app(routes).build_middleware_stack()
    assert str(caught.value) == (
        "route 'POST /cards/{card_id}/enter': unknown step 'enter_crad' in journey "
        "'card_activation'; did you mean 'enter_card'?"
    )


def test_a_misspelled_journey_in_a_route_map_is_refused(cx: Recording) -> None:
    with pytest.raises(ValueError) as caught:
        wsgi.CxMiddleware(lambda e, s: [], routes={"GET /x": ("card_activaton", "enter_card")})
    assert str(caught.value) == (
        "route 'GET /x': unknown journey 'card_activaton'; did you mean 'card_activation'?"
    )


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_a_mapped_route_the_app_does_not_have_is_logged_once(
    cx: Recording, framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    routes = {**ROUTES, "POST /card/{card_id}/enter": ("card_activation", "activated")}
    with caplog.at_level(logging.WARNING, logger="cxmetrics"), served(framework, routes) as url:
        for _ in range(3):
            assert httpx.post(url + "/cards/1/enter").status_code == 200
    warnings = [r.getMessage() for r in caplog.records if "matches no route" in r.getMessage()]
    assert warnings == [
        "route map: 'POST /card/{card_id}/enter' matches no route of the app "
        "(did you mean 'POST /cards/{card_id}/enter'?); its step "
        "'card_activation/activated' is never recorded"
    ]


def test_starlette_templates_through_mounts_methods_and_precedence() -> None:
    from starlette.routing import Mount, Route, Router

    from cxmetrics.integrations import routes

    async def endpoint(request: Any) -> None:
        return None

    router = Router(
        routes=[
            Route("/cards/new/enter", endpoint, methods=["POST"]),
            Route("/cards/{card_id}/enter", endpoint, methods=["POST"]),
            Mount("/v2", routes=[Route("/cards/{card_id:int}/otp", endpoint, methods=["POST"])]),
        ]
    )
    match = routes.starlette_matcher(router)

    def scope(method: str, path: str) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, "root_path": ""}

    assert [
        match(scope("POST", "/cards/new/enter")),
        match(scope("POST", "/cards/7/enter")),
        match(scope("GET", "/cards/7/enter")),
        match(scope("POST", "/v2/cards/7/otp")),
        match(scope("POST", "/v2/cards/x/otp")),
    ] == [
        ("POST", "/cards/new/enter"),
        ("POST", "/cards/{card_id}/enter"),
        None,
        ("POST", "/v2/cards/{card_id}/otp"),
        None,
    ]
    assert routes.starlette_routes(router) == {
        ("POST", "/cards/new/enter"),
        ("POST", "/cards/{card_id}/enter"),
        ("POST", "/v2/cards/{card_id}/otp"),
    }


def test_templates_compare_parameters_by_name_in_either_spelling() -> None:
    from cxmetrics.integrations.routes import template

    assert {template(p) for p in ("/c/{id}/x", "/c/{id:int}/x", "/c/<id>/x", "/c/<int:id>/x")} == {
        "/c/{id}/x"
    }
