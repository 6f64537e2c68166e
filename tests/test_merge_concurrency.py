"""Concurrent changes inside one field of one session, through a real uvicorn server, on every store.

Requests that loaded the same version of a session are parked after loading it, then released
together: every commit but the first finds the record changed, and must merge its own change into
the newer record instead of overwriting it. Dict keys at any depth, list appends and removals, set
members and counters all survive; only two requests setting the same scalar conflict.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from fastapi_sessions import Counter, SessionManager
from tests.support import Backend, UserSession, build_app, make_manager
from tests.support.live_server import Holds, live_client, live_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PARKED = 4


class Shared(UserSession):
    prefs: dict[str, dict[str, int]] = {}
    cart: list[str] = []
    tags: set[str] = set()
    visits: Counter = 0


def shared_routes(sessions: SessionManager[Shared], holds: Holds) -> APIRouter:
    """Routes that each change one part of a field; ``?hold=name`` parks the request after loading."""
    router = APIRouter()
    Session = Annotated[Shared, Depends(sessions.require_auth)]

    @router.put("/prefs/{group}/{name}/{value}")
    async def set_pref(group: str, name: str, value: int, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        session.prefs.setdefault(group, {})[name] = value

    @router.delete("/prefs/{group}/{name}")
    async def delete_pref(group: str, name: str, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        del session.prefs[group][name]

    @router.post("/cart/{item}")
    async def add_item(item: str, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        session.cart.append(item)

    @router.delete("/cart/{item}")
    async def remove_item(item: str, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        session.cart.remove(item)

    @router.post("/tags/{tag}")
    async def add_tag(tag: str, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        session.tags.add(tag)

    @router.delete("/tags/{tag}")
    async def remove_tag(tag: str, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        session.tags.discard(tag)

    @router.post("/visit")
    async def visit(session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        session.visits += 1

    @router.put("/theme/{theme}")
    async def set_theme(theme: str, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        session.theme = theme

    @router.get("/state")
    async def state(session: Session) -> dict[str, Any]:
        return {
            "prefs": session.prefs,
            "cart": session.cart,
            "tags": sorted(session.tags),
            "visits": session.visits,
            "theme": session.theme,
        }

    return router


def shared_app(backend: Backend, holds: Holds, **overrides: Any) -> FastAPI:
    sessions = make_manager(Shared, backend.make_store(), https_only=False, **overrides)
    return build_app(sessions, shared_routes(sessions, holds))


@asynccontextmanager
async def logged_in(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with live_client(url) as http:
        response = await http.post("/login", params={"uid": "u1"})
        assert response.status_code == 200, response.text
        yield http


async def state(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/state")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_all_ok(responses: list[httpx.Response]) -> None:
    assert [response.status_code for response in responses] == [200] * len(responses), [
        response.text for response in responses
    ]


async def test_keys_of_one_nested_dict_set_and_deleted_at_once_all_land(backend: Backend) -> None:
    holds = Holds()
    with live_server(shared_app(backend, holds), holds) as url:
        async with logged_in(url) as http:
            assert (await http.put("/prefs/ui/kept/0")).status_code == 200
            assert (await http.put("/prefs/ui/gone/0")).status_code == 200
            sends = [partial(http.put, f"/prefs/ui/k{n}/{n}") for n in range(PARKED)]
            async with holds.parked(*sends, partial(http.delete, "/prefs/ui/gone")) as responses:
                pass
            assert_all_ok(responses)
            assert (await state(http))["prefs"] == {"ui": {"kept": 0, **{f"k{n}": n for n in range(PARKED)}}}


async def test_items_appended_to_and_removed_from_one_list_at_once_all_land(backend: Backend) -> None:
    holds = Holds()
    with live_server(shared_app(backend, holds), holds) as url:
        async with logged_in(url) as http:
            for item in ("a", "b", "c"):
                assert (await http.post(f"/cart/{item}")).status_code == 200
            adds = [partial(http.post, f"/cart/new{n}") for n in range(PARKED)]
            removals = [partial(http.delete, "/cart/a"), partial(http.delete, "/cart/c")]
            async with holds.parked(*adds, *removals) as responses:
                pass
            assert_all_ok(responses)
            cart = (await state(http))["cart"]
            assert sorted(cart) == sorted(["b", *(f"new{n}" for n in range(PARKED))]), cart


async def test_members_added_to_and_removed_from_one_set_at_once_all_land(backend: Backend) -> None:
    holds = Holds()
    with live_server(shared_app(backend, holds), holds) as url:
        async with logged_in(url) as http:
            assert (await http.post("/tags/old")).status_code == 200
            adds = [partial(http.post, f"/tags/t{n}") for n in range(PARKED)]
            async with holds.parked(*adds, partial(http.delete, "/tags/old")) as responses:
                pass
            assert_all_ok(responses)
            assert (await state(http))["tags"] == [f"t{n}" for n in range(PARKED)]


@pytest.mark.parametrize("strict_updates", [False, True], ids=["default", "strict"])
async def test_concurrent_increments_of_a_counter_add_up(backend: Backend, strict_updates: bool) -> None:
    holds = Holds()
    with live_server(shared_app(backend, holds, strict_updates=strict_updates), holds) as url:
        async with logged_in(url) as http:
            async with holds.parked(*[partial(http.post, "/visit")] * PARKED) as responses:
                pass
            assert_all_ok(responses)
            assert (await state(http))["visits"] == PARKED


async def test_two_requests_setting_one_scalar_conflict(backend: Backend) -> None:
    holds = Holds()
    with live_server(shared_app(backend, holds, strict_updates=True), holds) as url:
        async with logged_in(url) as http:
            sends = [partial(http.put, "/theme/dark"), partial(http.put, "/theme/blue"), partial(http.post, "/cart/x")]
            async with holds.parked(*sends) as responses:
                pass
            themes = [response.status_code for response in responses[:2]]
            assert sorted(themes) == [200, 409], [response.text for response in responses]
            assert responses[2].status_code == 200, "a change to another field is no conflict"
            winner = ["dark", "blue"][themes.index(200)]
            after = await state(http)
            assert (after["theme"], after["cart"]) == (winner, ["x"])


async def test_two_clients_filling_one_cart_lose_no_acknowledged_item(backend: Backend) -> None:
    """Free-running: two connections on one session, each adding its own items and counting visits."""
    holds = Holds()
    per_client = 20
    with live_server(shared_app(backend, holds), holds) as url:
        async with logged_in(url) as http:
            cookie = http.cookies["session"]

            async def shop(client: str) -> list[str]:
                acknowledged = []
                async with live_client(url, cookie) as own:
                    for n in range(per_client):
                        item = f"{client}{n}"
                        add, visit = await asyncio.gather(own.post(f"/cart/{item}"), own.post("/visit"))
                        assert (add.status_code, visit.status_code) == (200, 200), (add.text, visit.text)
                        acknowledged.append(item)
                return acknowledged

            first, second = await asyncio.gather(shop("a"), shop("b"))
            after = await state(http)
            assert sorted(after["cart"]) == sorted(first + second)
            assert after["visits"] == 2 * per_client
