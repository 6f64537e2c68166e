"""Three-way merge of a session's fields: what a request loaded, what it ends with, what the store holds now.

A commit that finds the record changed since it was loaded does not overwrite the other request's
work. It describes its own change as operations (`diff`) and replays them on the newer record
(`Patch.apply`):

- dict keys merge at every depth: keys the request set, changed or deleted; every other key is theirs;
- a list the request appended to or removed items from gets the same appends and removals;
- a set (a field annotated ``set[...]`` or ``frozenset[...]``) gets the same additions and removals;
- a number declared a counter (`Counter`, or ``Annotated[float, Delta()]``) gets the same delta;
- anything else the request changed is a replacement: where the other request changed it too, that
  is a true conflict, which the caller settles (the last writer wins, or HTTP 409 under
  ``SESSION_STRICT_UPDATES``).

Values are the JSON forms Pydantic dumps; the operations never look at the model itself, only at
the `Schema` read from its annotations. No I/O here.
"""

import json
import types
import typing
from collections.abc import Mapping, MutableMapping, MutableSet, Set
from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from pydantic import BaseModel

__all__ = ["MISSING", "Counter", "Delta", "Patch", "Replace", "Schema", "diff", "schema_of_model"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""The value of a key that is not there."""


@dataclass(frozen=True, slots=True)
class Delta:
    """Marks a number field whose concurrent changes add up: ``Annotated[float, Delta()]``.

    Two requests that each add 1 to a field marked so leave it 2 higher, whatever the order of
    their commits; an unmarked field keeps the value of the last commit.
    """


Counter = Annotated[int, Delta()]
"""An ``int`` session field whose concurrent increments and decrements add up (see `Delta`)."""


@dataclass(slots=True, eq=False)
class Schema:
    """How the values under one name merge, read once from the model's annotations.

    Attributes:
        kind: ``"plain"``, ``"delta"`` (a counter) or ``"set"``; dicts and lists merge by their
            JSON shape whatever the kind.
        fields: For a nested model, the schema of each of its fields by name.
        values: For a ``dict[str, X]``, the schema of its values.
    """

    kind: str = "plain"
    fields: dict[str, "Schema"] = field(default_factory=dict)
    values: "Schema | None" = None

    def child(self, name: str) -> "Schema":
        """The schema of the value under ``name`` in a dict of this schema."""
        return self.fields.get(name) or self.values or PLAIN


PLAIN = Schema()
_DELTA = Schema("delta")
_SET = Schema("set")
_SET_ORIGINS = (set, frozenset, Set, MutableSet)
_MAPPING_ORIGINS = (dict, Mapping, MutableMapping)


def schema_of_model(model_cls: type[BaseModel]) -> dict[str, Schema]:
    """The schema of each field of ``model_cls``, by the name it has in the model's JSON dump."""
    return _model_fields(model_cls, {})


def _model_fields(model_cls: type[BaseModel], seen: dict[type, Schema]) -> dict[str, Schema]:
    return {
        name: _schema_of(info.annotation, tuple(info.metadata), seen) for name, info in model_cls.model_fields.items()
    }


def _schema_of(annotation: Any, metadata: tuple[Any, ...], seen: dict[type, Schema]) -> Schema:
    if any(isinstance(item, Delta) for item in metadata):
        return _DELTA
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _schema_of(args[0], tuple(args[1:]), seen)
    if origin is Union or origin is types.UnionType:
        present = [arg for arg in args if arg is not type(None)]
        return _schema_of(present[0], (), seen) if len(present) == 1 else PLAIN
    if annotation in _SET_ORIGINS or origin in _SET_ORIGINS:
        return _SET
    if origin in _MAPPING_ORIGINS and len(args) == 2:
        return Schema(values=_schema_of(args[1], (), seen))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        schema = seen.get(annotation)
        if schema is None:  # a model that contains itself reuses the schema being built
            schema = seen[annotation] = Schema()
            schema.fields.update(_model_fields(annotation, seen))
        return schema
    return PLAIN


class Patch:
    """One request's change to one value, replayable on a value another request changed meanwhile.

    Attributes:
        ours: The value the request ended with: what is written when there is nothing to merge.
    """

    __slots__ = ("ours",)

    def __init__(self, ours: Any) -> None:
        self.ours = ours

    def apply(self, theirs: Any) -> tuple[Any, bool]:
        """The change made to ``theirs``, and whether it met a true conflict (then ``ours`` wins)."""
        raise NotImplementedError


class Replace(Patch):
    """A new value: a scalar changed, a key added, or a change no finer operation describes."""

    __slots__ = ("base",)

    def __init__(self, ours: Any, base: Any) -> None:
        super().__init__(ours)
        self.base = base

    def apply(self, theirs: Any) -> tuple[Any, bool]:
        return self.ours, not _same(theirs, self.base)


class _Remove(Replace):
    """A key deleted from a dict (``ours`` is `MISSING`)."""

    __slots__ = ()


class _Increment(Patch):
    __slots__ = ("delta",)

    def __init__(self, ours: Any, delta: Any) -> None:
        super().__init__(ours)
        self.delta = delta

    def apply(self, theirs: Any) -> tuple[Any, bool]:
        if _is_number(theirs):
            return theirs + self.delta, False
        return self.ours, True


class _SetChange(Patch):
    __slots__ = ("added", "removed")

    def __init__(self, ours: Any, added: list[Any], removed: set[str]) -> None:
        super().__init__(ours)
        self.added = added
        self.removed = removed

    def apply(self, theirs: Any) -> tuple[Any, bool]:
        if not isinstance(theirs, list):
            return self.ours, True
        kept = {key: item for key, item in _keyed(theirs).items() if key not in self.removed}
        kept.update(_keyed(self.added))
        return list(kept.values()), False


class _ListChange(Patch):
    __slots__ = ("appended", "removed")

    def __init__(self, ours: Any, removed: list[Any], appended: list[Any]) -> None:
        super().__init__(ours)
        self.removed = removed
        self.appended = appended

    def apply(self, theirs: Any) -> tuple[Any, bool]:
        if not isinstance(theirs, list):
            return self.ours, True
        merged = list(theirs)
        for item in self.removed:
            # Taken out once per removal: an item another request removed too is simply gone.
            for index, candidate in enumerate(merged):
                if _same(candidate, item):
                    del merged[index]
                    break
        merged.extend(self.appended)
        return merged, False


class _DictChange(Patch):
    __slots__ = ("changes",)

    def __init__(self, ours: Any, changes: dict[str, Patch]) -> None:
        super().__init__(ours)
        self.changes = changes

    def apply(self, theirs: Any) -> tuple[Any, bool]:
        if not isinstance(theirs, dict):
            return self.ours, True
        merged = dict(theirs)
        conflicted = False
        for name, patch in self.changes.items():
            value, conflict = patch.apply(theirs.get(name, MISSING))
            conflicted = conflicted or conflict
            if value is MISSING:
                merged.pop(name, None)
            else:
                merged[name] = value
        return merged, conflicted


def diff(base: Any, ours: Any, schema: Schema = PLAIN) -> Patch | None:
    """The change from ``base`` (what the request loaded) to ``ours`` (what it ends with), or ``None``."""
    kind = schema.kind
    if kind == "delta" and _is_number(base) and _is_number(ours):
        return None if base == ours else _Increment(ours, ours - base)
    if kind == "set" and isinstance(base, list) and isinstance(ours, list):
        before, after = _keyed(base), _keyed(ours)
        if before.keys() == after.keys():
            return None
        added = [item for key, item in after.items() if key not in before]
        return _SetChange(ours, added, before.keys() - after.keys())
    if isinstance(base, dict) and isinstance(ours, dict):
        changes: dict[str, Patch] = {}
        for name, value in ours.items():
            old = base.get(name, MISSING)
            patch = Replace(value, MISSING) if old is MISSING else diff(old, value, schema.child(name))
            if patch is not None:
                changes[name] = patch
        for name, old in base.items():
            if name not in ours:
                changes[name] = _Remove(MISSING, old)
        return _DictChange(ours, changes) if changes else None
    if _same(base, ours):
        return None
    if isinstance(base, list) and isinstance(ours, list):
        return _list_change(base, ours) or Replace(ours, base)
    return Replace(ours, base)


def _list_change(base: list[Any], ours: list[Any]) -> Patch | None:
    """``ours`` as ``base`` with some items removed and others appended, or ``None`` if it is not that."""
    removed: list[Any] = []
    position = 0
    for item in base:
        if position < len(ours) and _same(item, ours[position]):
            position += 1
        else:
            removed.append(item)
    appended = ours[position:]
    if any(_same(item, gone) for item in appended for gone in removed):
        return None  # items moved or edited in place: the new order is the change, a replacement
    return _ListChange(ours, removed, appended)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``true`` is not ``1`` here (``1`` and ``1.0`` are one number)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _keyed(items: list[Any]) -> dict[str, Any]:
    """Set members by their canonical JSON text (they may be lists or dicts, which do not hash)."""
    return {json.dumps(item, sort_keys=True, separators=(",", ":")): item for item in items}
