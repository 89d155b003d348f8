"""api/metrics.py: the route label is the template a request matched, never its path."""

from __future__ import annotations

from starlette.routing import Mount, Route

from hearth.api.metrics import route_of


def endpoint() -> None: ...


def scope(path: str, route: object | None) -> dict[str, object]:
    out: dict[str, object] = {"type": "http", "path": path}
    if route is not None:
        out["route"] = route
    return out


def test_a_route_of_an_included_router_gets_the_prefixes_before_it() -> None:
    route = Route("/responses/{response_id}", endpoint)
    assert route_of(scope("/v1/responses/resp_1", route)) == "/v1/responses/{response_id}"


def test_a_route_that_knows_its_whole_path() -> None:
    route = Route("/v1/responses/{response_id}", endpoint)
    assert route_of(scope("/v1/responses/resp_1", route)) == "/v1/responses/{response_id}"


def test_a_path_parameter_with_slashes_stays_one_label() -> None:
    route = Route("/models/{model_id:path}", endpoint)
    label = route_of(scope("/v1/models/org/models/name", route))
    assert label == "/v1/models/{model_id}"


def test_a_route_at_its_router_prefix() -> None:
    assert route_of(scope("/v1/assistants", Route("/assistants", endpoint))) == "/v1/assistants"
    assert route_of(scope("/v1/", Route("/", endpoint))) == "/v1/"
    assert route_of(scope("/", Route("/", endpoint))) == "/"


def test_a_mount_and_no_route() -> None:
    assert route_of(scope("/ui/app.js", Mount("/ui", app=endpoint))) == "/ui/{path}"
    assert route_of(scope("/no/such/thing", None)) == "unmatched"
