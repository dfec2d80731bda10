"""A pipeline's parameters: :class:`Scope`, what a step sees and what it has assigned.

A branch's scope reads its parent's values until it first assigns a name (no copy per Parallel
branch or Map item); a Map item's sees its item bound over them through a view.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._runlog import StepLog, new_record

if TYPE_CHECKING:
    from ._params import Binder

__all__ = ["Scope"]


class Scope:
    """The parameters visible to a pipeline, and the ones it has assigned itself.

    A branch starts with its parent's values; what it gives back is ``assigned``, the names
    set through ``returns`` inside it, not what it inherited. ``values`` is read-only outside
    this class: a branch's scope reads its parent's dict until it first assigns a name, and
    only then copies it (a Map over 10,000 items would otherwise hold 10,000 copies of the
    same parameters, each one more container for the cyclic GC to walk).
    """

    __slots__ = ("_shared", "_values", "assigned")

    def __init__(
        self,
        values: dict[str, Any],
        assigned: dict[str, Any] | None = None,
        *,
        shared: bool = False,
    ) -> None:
        self._values = values
        #: Whether ``_values`` is another scope's dict, to be copied before the first write.
        self._shared = shared
        self.assigned: dict[str, Any] = {} if assigned is None else assigned

    def __repr__(self) -> str:
        return f"Scope({dict(self.values)!r}, assigned={self.assigned!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scope):
            return NotImplemented
        return dict(self.values) == dict(other.values) and self.assigned == other.assigned

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    @property
    def values(self) -> Mapping[str, Any]:
        """Every parameter visible here (do not write to it: :meth:`publish` does).

        Read-only while shared: a host's step writing to it would otherwise write to its
        parent's values, seen by its siblings.
        """
        return MappingProxyType(self._values) if self._shared else self._values

    def child(self, **bound: Any) -> Scope:
        """A scope for a branch: its own copy of these values plus ``bound``, which its
        caller may write."""
        return Scope({**self.values, **bound})

    def branch(self) -> Scope:
        """A scope for a branch that reads these values until it assigns a name itself.

        The parent must not assign names while the branch runs (a composite step publishes
        only after its branches have ended).
        """
        return Scope(self._values, shared=True)

    def branches(self) -> Iterator[Scope]:
        """:meth:`branch`, again and again, each made as it is asked for (never ends).

        One generator for a Parallel's branches: a generator resumed per branch, not the
        calls of ``branch`` and ``__init__``.
        """
        values = self._values
        while True:
            scope = new_record(Scope)  # Scope(values, shared=True), inline
            scope._values = values
            scope._shared = True
            scope.assigned = {}
            yield scope

    def with_item(self, name: str, item: Any) -> Scope:
        """A scope for a branch that sees ``name`` bound to ``item`` over these values."""
        return _ItemScope(self.values, name, item)

    def with_items(self, name: str, items: Iterable[Any]) -> Iterator[Scope]:
        """:meth:`with_item` for each of ``items``, in order, each made as it is asked for.

        The values are read once, not once per item (a property, a call), and the scopes
        made by a ``map`` in C: no call of ``with_item``, nor a generator resumed, per item.
        """
        return map(_ItemScope, repeat(self.values), repeat(name), items)

    def arguments(self, binder: Binder, step: str) -> dict[str, Any]:
        """A step's keyword arguments, bound from the values visible in this scope.

        Bound over the dict itself, shared or not: binding only reads it, and the read-only
        view :attr:`values` gives a shared scope (a property's call and a proxy, per step)
        guards against writers.
        """
        return binder.bind(self._values, step)

    def writable(self) -> dict[str, Any]:
        """The values as a dict this scope owns (copied now if it was shared)."""
        if self._shared:
            self._values = dict(self._values)
            self._shared = False
        return self._values

    def restore(self, values: Mapping[str, Any]) -> None:
        """Assign what an earlier run's step assigned (a reused step of a retry)."""
        self.writable().update(values)
        self.assigned.update(values)

    def publish(self, values: Mapping[str, Any], log: StepLog) -> None:
        """Assign a step's results here and record them as the step's outputs."""
        if not values:
            return  # nothing to copy a shared scope for
        # ``|=``, not ``update``: a method's call with a tuple of its arguments made for it,
        # four times per step.
        target = self.writable() if self._shared else self._values
        target |= values
        mine = self.assigned
        mine |= values
        recorded = log.assigned
        recorded |= values
        if log.attempts:
            out = log.attempts[-1].parameters_out
            out |= values


class _ItemScope(Scope):
    """A Map item's scope: ``name`` bound to the item over its parent's values, no copy.

    Until the item assigns a name, its values are a view made when asked for (and gone once
    read): the scope holds no container of its own while its task runs.
    """

    __slots__ = ("_item", "_name", "_parent")

    def __init__(self, parent: Mapping[str, Any], name: str, item: Any) -> None:
        # Scope.__init__(self, _UNSET, shared=True), inline: one per Map item.
        self._values = _UNSET
        self._shared = True
        self.assigned = {}
        self._parent = parent
        self._name = name
        self._item = item

    @property
    def values(self) -> Mapping[str, Any]:
        if self._shared:
            return _WithItem(self._parent, self._name, self._item)
        return self._values

    def branch(self) -> Scope:
        if self._shared:  # the branch sees the item too, still without a copy
            return _ItemScope(self._parent, self._name, self._item)
        return Scope(self._values, shared=True)

    def branches(self) -> Iterator[Scope]:
        while True:
            yield self.branch()

    def arguments(self, binder: Binder, step: str) -> dict[str, Any]:
        if self._shared:  # without the view values would make
            single = binder.single
            if single is not None and single.name == self._name:
                # The item alone, as it is (a Map item's usual arguments): bind_item's
                # loop and call cost an item ~2,400 instructions.
                item = self._item
                target = single.annotation
                if target is None or type(item) is target:
                    return {self._name: item}
            kwargs = binder.bind_item(self._parent, self._name, self._item, step)
            if kwargs is not None:
                return kwargs
        return binder.bind(self.values, step)

    def writable(self) -> dict[str, Any]:
        if self._shared:
            self._values = {**self._parent, self._name: self._item}
            self._shared = False
        return self._values


class _WithItem(Mapping[str, Any]):
    """``parent`` with ``name`` bound to ``item``, read-only, without a copy."""

    __slots__ = ("_item", "_name", "_parent")

    def __init__(self, parent: Mapping[str, Any], name: str, item: Any) -> None:
        self._parent = parent
        self._name = name
        self._item = item

    def __getitem__(self, key: str) -> Any:
        return self._item if key == self._name else self._parent[key]

    def __contains__(self, key: object) -> bool:
        return key == self._name or key in self._parent

    def __iter__(self) -> Iterator[str]:
        yield from self._parent
        if self._name not in self._parent:
            yield self._name

    def __len__(self) -> int:
        return len(self._parent) + (self._name not in self._parent)


#: The values of an item scope that has not copied its parent's yet (never read or written).
_UNSET: dict[str, Any] = {}
