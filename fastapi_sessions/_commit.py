"""What a request's commit must do, decided from plain facts about the request; no I/O here.

`RequestSession.commit` gathers the facts into a `CommitFacts`, asks `plan_commit` for a
`CommitPlan`, and then performs it against the store.
"""

import enum
from dataclasses import dataclass

__all__ = ["NOTHING", "Action", "CommitFacts", "CommitPlan", "plan_commit"]


class Action(enum.Enum):
    """The store operation a commit performs."""

    NOTHING = "nothing"
    """No store write (a read that needs no touch, or an empty new session)."""
    DESTROY = "destroy"
    """Delete the stored session (logout); clear the cookie if the browser sent one."""
    CREATE = "create"
    """Store a new session under a new ID and set its cookie."""
    REPLACE = "replace"
    """Move the stored session to a new ID (login, privilege change, step-up) and set the new cookie."""
    UPDATE = "update"
    """Write the changed fields (or just refresh the expiry) of the stored session."""
    REFRESH_COOKIE = "refresh_cookie"
    """No store write, but re-sign the cookie with the current key."""


# Made on every commit: not frozen, since a frozen dataclass's __init__ costs several times more.
@dataclass(slots=True)
class CommitFacts:
    """What the request did to its session.

    Attributes:
        stored: The request loaded a live stored session (else it has a new, unsaved one).
        cookie_present: The browser sent a session cookie, valid or not.
        destroy: The route destroyed the session (logout) and did not start another.
        regenerate: The route asked for a new ID (login, `SessionModel.regenerate`, a flash after logout).
        rotate_csrf: The route asked for a new CSRF token with the new ID (login, a completed factor).
        privilege_changed: A field in `SessionModel.privileged_fields` changed.
        changed: A model field or a metadata value (CSRF token, flash messages) changed.
        touch_due: ``rolling`` is on and the last touch is ``touch_after`` old.
        stale_cookie: The cookie was signed with a fallback key.
        lifetime_changed: The route gave the session a lifetime of its own (`SessionModel.set_expiry`),
            which the cookie's Max-Age (or its absence) must follow.
    """

    stored: bool
    cookie_present: bool
    destroy: bool = False
    regenerate: bool = False
    rotate_csrf: bool = False
    privilege_changed: bool = False
    changed: bool = False
    touch_due: bool = False
    stale_cookie: bool = False
    lifetime_changed: bool = False


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """The decision: one store action and what goes with it.

    Attributes:
        action: The store operation.
        clear_cookie: With `Action.DESTROY`, expire the browser's cookie.
        rotate_csrf: With `Action.REPLACE`, renew the CSRF token too (a login or a privilege change).
        resign_cookie: With `Action.UPDATE`, send the cookie again once written: re-signed with the
            current key, or with the Max-Age of a new lifetime.
    """

    action: Action
    clear_cookie: bool = False
    rotate_csrf: bool = False
    resign_cookie: bool = False


NOTHING = CommitPlan(Action.NOTHING)
"""The plan of a commit with nothing to write: what most requests get."""
_CREATE = CommitPlan(Action.CREATE)
_REFRESH_COOKIE = CommitPlan(Action.REFRESH_COOKIE)
_UPDATE = CommitPlan(Action.UPDATE)
_UPDATE_RESIGN = CommitPlan(Action.UPDATE, resign_cookie=True)


def plan_commit(facts: CommitFacts) -> CommitPlan:
    """Decide what the commit of a request must do."""
    if facts.destroy:
        return CommitPlan(Action.DESTROY, clear_cookie=facts.cookie_present)
    if not facts.stored:
        # A cookie that named no live session is left alone rather than cleared: the browser may
        # hold a newer cookie by now (a login that raced this request), and clearing by name would
        # log it out.
        return _CREATE if facts.changed else NOTHING
    if facts.regenerate or facts.privilege_changed:
        return CommitPlan(Action.REPLACE, rotate_csrf=facts.rotate_csrf or facts.privilege_changed)
    if facts.changed or facts.touch_due:
        return _UPDATE_RESIGN if facts.stale_cookie or facts.lifetime_changed else _UPDATE
    return _REFRESH_COOKIE if facts.stale_cookie else NOTHING
