"""Property-based tests: cookie parsing never raises, and the session lifecycle keeps its invariants.

The lifecycle machine drives the app over HTTP on the memory store with two browsers and checks,
after every step, that each browser holds at most one live record, that no record is left behind,
that a regenerated or logged-out ID is dead, and that reads without a session never touch the store.
"""

import string
from contextlib import ExitStack
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fastapi_sessions import MemoryStore
from fastapi_sessions._cookies import CookieReader
from fastapi_sessions.signing import CookieSigner, new_session_id, store_key
from tests.support import (
    OTHER_SECRET,
    SECRET,
    Browser,
    CountingStore,
    FakeClock,
    UserSession,
    build_app,
    client,
    make_manager,
    run,
)

signer = CookieSigner(SECRET, [OTHER_SECRET])
ALPHABET = string.ascii_letters + string.digits + "-_"
ids = st.text(ALPHABET, min_size=43, max_size=43)
cookie_shaped = st.from_regex(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", fullmatch=True)
FAST = settings(max_examples=100, deadline=None)


@FAST
@given(st.one_of(st.text(), cookie_shaped, st.binary().map(lambda raw: raw.decode("latin-1"))))
def test_unsign_never_raises(value: str) -> None:
    result = signer.unsign(value)
    if result is not None:
        assert len(result.session_id) == 43
        assert CookieSigner(SECRET).sign(result.session_id) == value or result.stale_key


@FAST
@given(ids)
def test_sign_unsign_round_trip(session_id: str) -> None:
    key = store_key(session_id, signer.namespace)
    assert signer.unsign(signer.sign(session_id)) == (session_id, False, key)
    assert signer.unsign(CookieSigner(OTHER_SECRET).sign(session_id)) == (session_id, True, key)
    assert CookieSigner(SECRET).unsign(CookieSigner(OTHER_SECRET).sign(session_id)) is None


@FAST
@given(ids, st.integers(min_value=0, max_value=86), st.sampled_from(ALPHABET + ".="))
def test_any_change_to_a_cookie_breaks_it(session_id: str, position: int, replacement: str) -> None:
    value = signer.sign(session_id)
    changed = value[:position] + replacement + value[position + 1 :]
    if changed != value:
        # Including the last character, whose 2 spare bits a lenient base64 decoder would ignore.
        assert signer.unsign(changed) is None


header_names = st.sampled_from([b"cookie", b"Cookie", b"host", b"x-cookie", b"set-cookie"])
header_values = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.tuples(
            st.sampled_from([b"__Host-session", b"__host-session", b"session", b"a", b" __Host-session", b""]),
            st.binary(max_size=100),
        ),
        max_size=6,
    ).map(lambda pairs: b";".join(name + b"=" + value for name, value in pairs)),
)


@FAST
@given(st.lists(st.tuples(header_names, header_values), max_size=8))
def test_cookie_reader_never_raises(headers: list[tuple[bytes, bytes]]) -> None:
    value, count = CookieReader("__Host-session").read(headers)
    assert count >= 0
    if count != 1:
        assert value is None
    else:
        assert value is not None
        raw = value.encode("latin-1")
        assert any(b"__Host-session=" + raw in header for name, header in headers if name == b"cookie")


@FAST
@given(ids, st.lists(st.binary(max_size=50).filter(lambda raw: b"__Host-session=" not in raw), max_size=5))
def test_cookie_reader_finds_the_one_session_cookie(session_id: str, others: list[bytes]) -> None:
    cookie = signer.sign(session_id).encode()
    parts = [b"other=" + raw.replace(b";", b"") for raw in others]
    parts.insert(len(parts) // 2, b"__Host-session=" + cookie)
    value, count = CookieReader("__Host-session").read([(b"cookie", b"; ".join(parts))])
    assert (value, count) == (cookie.decode(), 1)


@dataclass
class Expected:
    """What one browser's session should hold."""

    user_id: str | None = None
    theme: str = "light"


themes = st.sampled_from(["dark", "light", "solarized", "x" * 50])
users = st.sampled_from(["alice", "bob", "*", '{"$ne": null}'])
browser_index = st.integers(min_value=0, max_value=1)


class SessionLifecycle(RuleBasedStateMachine):
    """Two browsers logging in, out, regenerating, writing and reading in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.memory = MemoryStore()
        self.store = CountingStore(self.memory)
        self.sessions = make_manager(UserSession, self.store, clock=FakeClock())
        self.stack = ExitStack()
        self.client = self.stack.enter_context(client(build_app(self.sessions)))
        self.browsers = [Browser(self.client, self.sessions.cookie_name, f"browser-{i}") for i in range(2)]
        self.expected = [Expected(), Expected()]
        self.dead: list[str] = []

    def teardown(self) -> None:
        self.stack.close()

    def live(self, cookie: str) -> bool:
        unsigned = self.sessions.signer.unsign(cookie)
        assert unsigned is not None
        return run(self.client, lambda: self.memory.load(unsigned.key)) is not None

    def retire(self, index: int, before: str | None) -> None:
        """After a step that must kill ``before``: check it is dead and remember it for replays."""
        if before is not None:
            assert self.browsers[index].cookie != before
            assert not self.live(before)
            self.dead.append(before)

    @rule(index=browser_index)
    def read(self, index: int) -> None:
        browser = self.browsers[index]
        anonymous = browser.cookie is None
        io, writes = self.store.io, self.store.writes
        body = browser.get("/read").json()
        expected = self.expected[index]
        assert (body["user_id"], body["theme"]) == (expected.user_id, expected.theme)
        assert self.store.writes == writes
        if anonymous:
            assert self.store.io == io

    @rule(index=browser_index, theme=themes)
    def write(self, index: int, theme: str) -> None:
        browser = self.browsers[index]
        before = browser.cookie
        assert browser.post("/write", params={"theme": theme}).status_code == 200
        self.expected[index].theme = theme
        if before is not None:
            assert browser.cookie == before  # not a privilege change: same ID

    @rule(index=browser_index, uid=users)
    def login(self, index: int, uid: str) -> None:
        browser = self.browsers[index]
        before = browser.cookie
        assert browser.post("/login", params={"uid": uid}).status_code == 200
        self.expected[index].user_id = uid
        assert browser.cookie is not None
        self.retire(index, before)

    @rule(index=browser_index)
    def logout(self, index: int) -> None:
        browser = self.browsers[index]
        before = browser.cookie
        writes = self.store.writes
        assert browser.post("/logout").status_code == 200
        self.expected[index] = Expected()
        assert browser.cookie is None
        self.retire(index, before)
        if before is None:
            assert self.store.writes == writes  # an anonymous logout writes nothing

    @rule(index=browser_index)
    def regenerate(self, index: int) -> None:
        browser = self.browsers[index]
        before = browser.cookie
        writes = self.store.writes
        assert browser.post("/regenerate").status_code == 200
        self.retire(index, before)
        if before is None:
            assert browser.cookie is None and self.store.writes == writes

    @precondition(lambda self: bool(self.dead))
    @rule(index=browser_index, data=st.data())
    def replay_a_dead_cookie(self, index: int, data: st.DataObject) -> None:
        cookie = data.draw(st.sampled_from(self.dead))
        writes = self.store.writes
        body = self.browsers[index].replay("GET", "/read", cookie).json()
        assert (body["user_id"], body["theme"]) == (None, "light")
        assert self.store.writes == writes

    @rule()
    def forge_a_cookie(self) -> None:
        writes = self.store.writes
        response = self.browsers[0].replay("GET", "/me", signer.sign(new_session_id())[:-2] + "AA")
        assert response.status_code == 401
        assert self.store.writes == writes

    @invariant()
    def one_record_per_browser_and_none_left_behind(self) -> None:
        holding = [browser.cookie for browser in self.browsers if browser.cookie is not None]
        assert len(set(holding)) == len(holding)
        assert len(self.memory) == len(holding)
        for cookie in holding:
            assert self.live(cookie)


SessionLifecycle.TestCase.settings = settings(max_examples=50, stateful_step_count=15, deadline=None)
TestSessionLifecycle = SessionLifecycle.TestCase
