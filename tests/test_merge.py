"""The three-way merge on its own: what a change is made of, and how it replays on a newer value."""

from collections import Counter as Multiset
from typing import Annotated, Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from fastapi_sessions import Counter, Delta, SessionModel
from fastapi_sessions._merge import MISSING, PLAIN, Patch, Replace, Schema, diff, schema_of_model

ITEMS = st.sampled_from("abcdefgh")


def merged(base: Any, ours: Any, theirs: Any, schema: Schema = PLAIN) -> tuple[Any, bool]:
    patch = diff(base, ours, schema)
    assert patch is not None
    return patch.apply(theirs)


# What the schema reads from the model.


class Address(BaseModel):
    tags: set[str] = set()
    hits: Counter = 0


class Node(BaseModel):
    children: list["Node"] = []
    seen: Counter = 0


class Shape(SessionModel):
    visits: Counter = 0
    score: Annotated[float, Delta()] = 0.0
    plain: int = 0
    tags: set[str] = set()
    frozen: frozenset[int] = frozenset()
    maybe_tags: Optional[set[str]] = None  # noqa: UP045 - the typing form must be read too
    either: set[str] | list[int] = []
    by_group: dict[str, set[str]] = {}
    address: Address = Address()
    tree: Node = Node()


def test_the_schema_follows_annotations_into_dicts_and_nested_models() -> None:
    schemas = schema_of_model(Shape)
    kinds = {name: schema.kind for name, schema in schemas.items()}
    assert kinds == {
        "visits": "delta",
        "score": "delta",
        "plain": "plain",
        "tags": "set",
        "frozen": "set",
        "maybe_tags": "set",
        "either": "plain",
        "by_group": "plain",
        "address": "plain",
        "tree": "plain",
    }
    assert schemas["by_group"].child("any").kind == "set"
    assert schemas["address"].child("tags").kind == "set"
    assert schemas["address"].child("hits").kind == "delta"
    assert schemas["tree"].child("seen").kind == "delta"
    assert schemas["address"].child("unknown") is PLAIN


# Changes and their replay.


def test_no_change_is_no_patch() -> None:
    assert diff({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) is None
    assert diff(["x", "y"], ["y", "x"], Schema("set")) is None, "a set in another order is the same set"
    assert diff(3, 3, Schema("delta")) is None


def test_dict_keys_merge_at_every_depth() -> None:
    base = {"ui": {"theme": "light", "lang": "en"}, "other": 1}
    ours = {"ui": {"theme": "dark", "lang": "en", "font": 12}, "other": 1}
    theirs = {"ui": {"theme": "light", "lang": "fr"}, "other": 2, "added": True}
    assert merged(base, ours, theirs) == (
        {"ui": {"theme": "dark", "lang": "fr", "font": 12}, "other": 2, "added": True},
        False,
    )


def test_a_key_deleted_on_one_side_is_gone_and_a_key_changed_on_both_conflicts() -> None:
    assert merged({"a": 1, "b": 2}, {"b": 2}, {"a": 1, "b": 3}) == ({"b": 3}, False)
    assert merged({"a": 1}, {}, {"a": 5}) == ({}, True), "they changed what we deleted"
    assert merged({"a": 1}, {"a": 2}, {"a": 3}) == ({"a": 2}, True)
    assert merged({"a": 1}, {"a": 2}, {}) == ({"a": 2}, True), "they deleted what we changed"


def test_list_appends_and_removals_replay_as_operations() -> None:
    assert merged(["a", "b", "c"], ["a", "c", "d"], ["a", "b", "c", "x"]) == (["a", "c", "x", "d"], False)
    assert merged(["a", "a"], ["a"], ["a", "a", "a"]) == (["a", "a"], False), "one removal takes one item"
    assert merged(["a"], [], []) == ([], False), "an item removed on both sides is simply gone"


def test_a_reordered_or_edited_list_is_a_replacement() -> None:
    patch = diff(["a", "b"], ["b", "a"])
    assert isinstance(patch, Replace)
    assert patch.apply(["a", "b", "c"]) == (["b", "a"], True)
    assert patch.apply(["a", "b"]) == (["b", "a"], False)
    assert isinstance(diff([1, 2, 3], [1, 20, 3]), Replace)


def test_set_members_added_and_removed() -> None:
    schema = Schema("set")
    assert merged(["a", "b"], ["b", "c"], ["b", "a", "d"], schema) == (["b", "d", "c"], False)
    assert merged([[1], {"k": 1}], [[1]], [{"k": 1}, [2]], schema) == ([[2]], False), "unhashable members"


def test_counters_add_their_deltas() -> None:
    schema = Schema("delta")
    assert merged(1, 3, 10, schema) == (12, False)
    assert merged(1.5, 1.0, 2.0, schema) == (1.5, False)
    assert merged(1, 3, "text", schema) == (3, True), "a counter that is no number any more"
    assert merged(1, 3, MISSING, schema) == (3, True)
    assert isinstance(diff(True, False, schema), Replace), "a bool is no counter"


def test_a_value_whose_shape_changed_meanwhile_takes_ours_as_a_conflict() -> None:
    assert merged({"a": 1}, {"a": 2}, ["not", "a", "dict"]) == ({"a": 2}, True)
    assert merged(["a"], ["a", "b"], {"k": 1}) == (["a", "b"], True)
    assert merged(["a"], ["b"], "text", Schema("set")) == (["b"], True)


def test_json_true_is_not_the_number_one() -> None:
    assert isinstance(diff(1, True), Replace)
    assert diff(1, 1.0) is None


def test_a_bare_patch_cannot_be_applied() -> None:
    with pytest.raises(NotImplementedError):
        Patch(1).apply(2)


# Properties: changes on both sides of disjoint kinds all survive.


def edited(items: list[str], removals: list[int], appends: list[str]) -> tuple[list[str], list[str]]:
    """``items`` with the items at ``removals`` (positions, modulo its length) taken out and ``appends`` added."""
    kept = list(items)
    removed = []
    for position in removals:
        if kept:
            removed.append(kept.pop(position % len(kept)))
    return kept + appends, removed


@settings(deadline=None)  # pure and bounded; a loaded machine is no failure
@given(
    st.lists(ITEMS, max_size=8),
    st.lists(st.integers(0, 7), max_size=3),
    st.lists(ITEMS, max_size=3),
    st.lists(st.integers(0, 7), max_size=3),
    st.lists(ITEMS, max_size=3),
)
def test_list_edits_on_both_sides_all_survive(
    base: list[str],
    our_removals: list[int],
    our_appends: list[str],
    their_removals: list[int],
    their_appends: list[str],
) -> None:
    ours, _ = edited(base, our_removals, our_appends)
    theirs, _ = edited(base, their_removals, their_appends)
    patch = diff(base, ours)
    if patch is None:
        return
    result, conflict = patch.apply(theirs)
    if conflict:  # our edit read as a replacement (it looked like a move): ours stands whole
        assert result == ours
        return
    # Every item is there as often as theirs has it, plus what we added, minus what we removed.
    expected = Multiset(theirs)
    expected.update(Multiset(ours) - Multiset(base))
    expected.subtract(Multiset(base) - Multiset(ours))
    assert Multiset(result) == +expected


@settings(deadline=None)
@given(st.dictionaries(ITEMS, st.integers(0, 3), max_size=5), st.data())
def test_disjoint_dict_edits_all_survive(base: dict[str, int], data: st.DataObject) -> None:
    names = sorted(set("abcdefgh"))
    ours_names = data.draw(st.sets(st.sampled_from(names[:4]), max_size=4))
    theirs_names = data.draw(st.sets(st.sampled_from(names[4:]), max_size=4))
    ours = {**base, **{name: 9 for name in ours_names}}
    theirs = {**base, **{name: 8 for name in theirs_names}}
    patch = diff(base, ours)
    if patch is None:
        return
    assert patch.apply(theirs) == ({**theirs, **{name: 9 for name in ours_names}}, False)
