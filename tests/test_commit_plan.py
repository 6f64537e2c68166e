"""The commit's decision, tested as the pure function it is: facts about a request in, a plan out."""

import itertools

import pytest

from fastapi_sessions._commit import Action, CommitFacts, CommitPlan, plan_commit


def test_a_read_of_a_stored_session_writes_nothing() -> None:
    assert plan_commit(CommitFacts(stored=True, cookie_present=True)) == CommitPlan(Action.NOTHING)


def test_a_new_session_with_nothing_in_it_is_not_stored() -> None:
    assert plan_commit(CommitFacts(stored=False, cookie_present=False)).action is Action.NOTHING


def test_a_dead_cookie_is_left_alone_rather_than_cleared() -> None:
    # Clearing it by name could log out a newer cookie that a racing login set.
    plan = plan_commit(CommitFacts(stored=False, cookie_present=True, touch_due=True, stale_cookie=True))
    assert plan == CommitPlan(Action.NOTHING)


def test_a_new_session_that_changed_is_created() -> None:
    assert plan_commit(CommitFacts(stored=False, cookie_present=False, changed=True)) == CommitPlan(Action.CREATE)


def test_a_login_on_a_new_session_creates_it_under_a_new_id() -> None:
    facts = CommitFacts(stored=False, cookie_present=True, changed=True, regenerate=True, rotate_csrf=True)
    assert plan_commit(facts).action is Action.CREATE


def test_a_change_is_an_update() -> None:
    assert plan_commit(CommitFacts(stored=True, cookie_present=True, changed=True)) == CommitPlan(Action.UPDATE)


def test_a_due_touch_is_an_update_even_without_changes() -> None:
    assert plan_commit(CommitFacts(stored=True, cookie_present=True, touch_due=True)).action is Action.UPDATE


def test_an_update_of_a_stale_cookie_re_signs_it() -> None:
    facts = CommitFacts(stored=True, cookie_present=True, changed=True, stale_cookie=True)
    assert plan_commit(facts) == CommitPlan(Action.UPDATE, resign_cookie=True)


def test_a_read_with_a_stale_cookie_only_re_signs_it() -> None:
    facts = CommitFacts(stored=True, cookie_present=True, stale_cookie=True)
    assert plan_commit(facts) == CommitPlan(Action.REFRESH_COOKIE)


def test_regeneration_replaces_the_stored_session() -> None:
    plan = plan_commit(CommitFacts(stored=True, cookie_present=True, regenerate=True))
    assert plan == CommitPlan(Action.REPLACE, rotate_csrf=False)


def test_a_login_replaces_and_rotates_the_csrf_token() -> None:
    facts = CommitFacts(stored=True, cookie_present=True, regenerate=True, rotate_csrf=True, changed=True)
    assert plan_commit(facts) == CommitPlan(Action.REPLACE, rotate_csrf=True)


def test_a_privilege_change_however_made_replaces_and_rotates() -> None:
    facts = CommitFacts(stored=True, cookie_present=True, privilege_changed=True, changed=True)
    assert plan_commit(facts) == CommitPlan(Action.REPLACE, rotate_csrf=True)


def test_a_logout_deletes_and_clears_the_cookie_the_browser_sent() -> None:
    facts = CommitFacts(stored=True, cookie_present=True, destroy=True)
    assert plan_commit(facts) == CommitPlan(Action.DESTROY, clear_cookie=True)


def test_a_logout_without_a_cookie_sends_no_clearing_cookie() -> None:
    facts = CommitFacts(stored=False, cookie_present=False, destroy=True)
    assert plan_commit(facts) == CommitPlan(Action.DESTROY, clear_cookie=False)


FLAGS = ("regenerate", "rotate_csrf", "privilege_changed", "changed", "touch_due", "stale_cookie")


@pytest.mark.parametrize("flags", list(itertools.product((False, True), repeat=len(FLAGS))))
@pytest.mark.parametrize("stored", [False, True])
def test_destroy_overrides_everything_else(flags: tuple[bool, ...], stored: bool) -> None:
    facts = CommitFacts(stored=stored, cookie_present=True, destroy=True, **dict(zip(FLAGS, flags, strict=True)))
    assert plan_commit(facts) == CommitPlan(Action.DESTROY, clear_cookie=True)


@pytest.mark.parametrize("flags", list(itertools.product((False, True), repeat=len(FLAGS))))
def test_a_session_not_stored_is_created_exactly_when_it_changed(flags: tuple[bool, ...]) -> None:
    values = dict(zip(FLAGS, flags, strict=True))
    plan = plan_commit(CommitFacts(stored=False, cookie_present=False, **values))
    assert plan.action is (Action.CREATE if values["changed"] else Action.NOTHING)
    assert not (plan.clear_cookie or plan.rotate_csrf or plan.resign_cookie)


@pytest.mark.parametrize("cookie_present", [False, True])
@pytest.mark.parametrize("rotate_csrf", [False, True])
@pytest.mark.parametrize("stored", [False, True])
def test_nothing_changed_nor_asked_for_is_nothing_to_do(stored: bool, rotate_csrf: bool, cookie_present: bool) -> None:
    # RequestSession's commit answers NOTHING to these facts without asking plan_commit: it must agree.
    facts = CommitFacts(stored=stored, cookie_present=cookie_present, rotate_csrf=rotate_csrf)
    assert plan_commit(facts) == CommitPlan(Action.NOTHING)
