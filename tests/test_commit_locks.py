"""`KeyLocks`: commits of one session in a process queue; other sessions never wait; nothing is left behind."""

import asyncio

import pytest

from fastapi_sessions._locks import KeyLocks

pytestmark = pytest.mark.anyio


async def test_commits_of_one_key_queue_in_order_and_others_do_not_wait() -> None:
    locks = KeyLocks()
    order: list[str] = []
    release_first = asyncio.Event()

    async def commit(key: str, name: str, wait: asyncio.Event | None = None) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            if wait is not None:
                await wait.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(commit("a", "first", release_first))
    await asyncio.sleep(0)
    second = asyncio.create_task(commit("a", "second"))
    other = asyncio.create_task(commit("b", "other"))
    await other  # another session's commit goes through while "a" is held
    assert order == ["first in", "other in", "other out"]
    assert len(locks) == 1
    release_first.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["first out", "second in", "second out"]
    assert len(locks) == 0


async def test_a_commit_cancelled_while_waiting_leaves_nothing_behind() -> None:
    locks = KeyLocks()
    holding = locks.hold("a")
    await holding.__aenter__()
    waiter = asyncio.create_task(locks.hold("a").__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await holding.__aexit__(None, None, None)
    assert len(locks) == 0


async def test_an_error_inside_releases_the_lock() -> None:
    locks = KeyLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("a"):
            raise RuntimeError("the store failed")
    assert len(locks) == 0
    async with locks.hold("a"):  # not left locked
        pass
