"""StoreUrl, the one URL helper of every store: redaction, hosts and typed options."""

import pytest

from fastapi_sessions import SessionConfigError
from fastapi_sessions.stores._url import Bool, Float, Int, StoreUrl, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:hunter2@h:6379/0?bogus=1", "redis://user:***@h:6379/0?bogus=1"),
        ("redis://:p/a?s#s@w:rd@h/0", "redis://:***@h/0"),
        ("postgresql://app:p%40ss@db/app", "postgresql://app:***@db/app"),
        ("redis://u/x:y@h", "redis://***@h"),
        ("redis+sentinel://s1/m?sentinel_password=s3&db=1", "redis+sentinel://s1/m?sentinel_password=***&db=1"),
        ("redis://token@h", "redis://token@h"),
        ("sqlite:///a@b.db", "sqlite:///a@b.db"),
        ("nosuch:user:pw@host", "nosuch:user:***@host"),
    ],
)
def test_redaction_masks_the_password_whatever_it_holds(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_user_information_ends_at_the_last_at_sign() -> None:
    url = StoreUrl("redis://me:p/a?s#s@w:rd@cache:6380/3?db=1", "RedisStore")
    assert (url.username, url.password) == ("me", "p/a?s#s@w:rd")
    assert url.hosts(6379) == [("cache", 6380)]
    assert (url.path, url.query) == ("/3", "db=1")
    assert url.userinfo() == "me:p%2Fa%3Fs%23s%40w%3Ard@"


@pytest.mark.parametrize(("text", "value"), [(t, True) for t in ("true", "1", "Yes", "ON")] + [("off", False)])
def test_one_boolean_vocabulary(text: str, value: bool) -> None:
    assert StoreUrl(f"memory://?flag={text}", "MemoryStore").options({"flag": Bool()})[0] == {"flag": value}


def test_options_are_typed_and_unknown_ones_refused() -> None:
    url = StoreUrl("memory://?n=3&x=0.5&other=1", "MemoryStore")
    known = {"n": Int(minimum=1), "x": Float(positive=True)}
    assert url.options(known, driver_takes=lambda name: name == "other") == ({"n": 3, "x": 0.5}, ["other=1"])
    with pytest.raises(SessionConfigError, match=r"^SESSION_STORE_URL 'memory://\?n=3&x=0.5&other=1': unknown option"):
        url.options(known)
    with pytest.raises(SessionConfigError, match="unknown scheme 'redis' for MemoryStore; use one of memory://"):
        StoreUrl("redis://h", "MemoryStore")
