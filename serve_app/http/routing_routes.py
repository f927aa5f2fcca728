"""A/B routes over HTTP: set, read and delete an endpoint's route, and its per-arm stats."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime

from serve_app.auth.rbac import Permission
from serve_app.auth.tokens import Principal
from serve_app.catalog.routes import RouteConfig
from serve_app.http.security import require
from serve_app.registry.registry import ModelRegistry
from serve_app.schemas.models import NAME_PATTERN
from serve_app.schemas.problem import problem_responses
from serve_app.schemas.routes import MAX_STATS_RESULTS, RouteOut, RouteStats

ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
Engineer = Annotated[Principal, require(Permission.MANAGE_ROUTES)]
Viewer = Annotated[Principal, require(Permission.MANAGE_ROUTES, Permission.READ_AUDIT)]
Endpoint = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        description="What clients send as `model`; a served model's name routes that model.",
    ),
]


def build_routing_router(registry: ModelRegistry) -> APIRouter:
    router = APIRouter(prefix="/routes", tags=["routes"])

    @router.get("", response_model=list[RouteOut], responses=ERRORS)
    async def routes(caller: Viewer) -> list[RouteOut]:
        """Every endpoint's route."""
        return await registry.routes()

    @router.put("/{endpoint}", response_model=RouteOut, responses=ERRORS)
    async def set_route(caller: Engineer, endpoint: Endpoint, body: RouteConfig) -> RouteOut:
        """Split the endpoint's traffic between validated versions, live and audited."""
        return await registry.set_route(endpoint, body, caller)

    @router.get("/{endpoint}", response_model=RouteOut, responses=ERRORS)
    async def route(caller: Viewer, endpoint: Endpoint) -> RouteOut:
        return await registry.route(endpoint)

    @router.delete("/{endpoint}", status_code=204, response_class=Response, responses=ERRORS)
    async def delete_route(caller: Engineer, endpoint: Endpoint) -> Response:
        """End the route: the endpoint answers as before it (by its model's production version)."""
        await registry.delete_route(endpoint, caller)
        return Response(status_code=204)

    @router.get("/{endpoint}/stats", response_model=RouteStats, responses=ERRORS)
    async def stats(
        caller: Viewer,
        endpoint: Endpoint,
        limit: Annotated[int, Query(ge=1, le=MAX_STATS_RESULTS)] = 10_000,
        since: Annotated[
            AwareDatetime | None,
            Query(description="Only results stored at or after this instant (RFC 3339)."),
        ] = None,
    ) -> RouteStats:
        """Per-arm counts, latency percentiles and positive rate over the newest results.
        With the route's `updated_at` as `since`, about the current route alone (answers
        within `registry.poll_interval_s` of a change may come from the previous one)."""
        return await registry.route_stats(endpoint, limit, since)

    return router
