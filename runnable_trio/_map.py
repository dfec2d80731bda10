"""``Map``: the same branch once per item of a list parameter, concurrently.

Item ``i`` runs in a child scope where ``iterate_as`` is bound to the item, recorded and
attributed under ``name.i``. At fan-in, every name the branch can assign becomes a list with
one entry per item, in input order whatever the completion order (``None`` where an item did
not assign it); ``reducer``, when given, turns each list into the value kept. The names are
known when the step is built, so an empty list of items gives an empty list for each.

Items start in input order. ``max_concurrency`` bounds how many run at once with a
``trio.CapacityLimiter`` taken before an item's task is started, so a Map over many items with
a small limit holds only that many tasks (and child scopes) at a time.

The list itself is not copied into the Map step's record: each item's own steps record the
item they received, and a durable store that writes a step's enclosing records with it would
otherwise write the whole list once per item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import repeat
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ParameterError, available_names, short_repr
from ._fanout import (
    CompositeStep,
    check_name_field,
    check_pipeline,
    check_positive_int,
    fan_out,
    names_assigned,
)
from ._pipeline import AsyncPipeline
from ._validators import check_bool, checked_init, definition_error

if TYPE_CHECKING:
    from ._runlog import StepLog
    from ._runner import RunContext
    from ._scope import Scope

__all__ = ["Map"]


def _check_reducer(instance: Map, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise definition_error(
            instance, "reducer", "a callable taking the list of results, or None", value
        )


@checked_init
@attrs.frozen(kw_only=True)
class Map(CompositeStep):
    """Run ``branch`` once per item of the list parameter ``iterate_on``, concurrently.

    Args:
        name: the step's name (unique within its pipeline, no ``.`` or ``%``).
        iterate_on: the name of the list parameter to iterate over.
        iterate_as: the parameter name each branch sees its item as.
        branch: the pipeline run for each item.
        reducer: called with each assigned name's list of per-item values (input order);
            its result is kept instead of the list. Default: keep the list.
        max_concurrency: at most this many items running at once (default: no limit).
        fail_fast: if True (the default), the first failing item cancels the others at
            once. If False, every item runs to its end and the step then fails with all
            the errors (one error as itself, several as an ``ExceptionGroup``).
        on_failure, terminate_with_success, terminate_with_failure, timeout: see
            :class:`BaseStep`; ``timeout`` covers the whole step, every item included.

    Raises:
        PipelineDefinitionError: at build time, for any unusable argument.
    """

    kind = "map"

    iterate_on: str = attrs.field(kw_only=False, validator=check_name_field)
    iterate_as: str = attrs.field(kw_only=False, validator=check_name_field)
    branch: AsyncPipeline = attrs.field(kw_only=False, validator=check_pipeline)
    reducer: Callable[[list[Any]], Any] | None = attrs.field(default=None, validator=_check_reducer)
    max_concurrency: int | None = attrs.field(default=None, validator=check_positive_int)
    fail_fast: bool = attrs.field(default=True, validator=check_bool)
    _names: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        object.__setattr__(self, "_names", names_assigned(self.branch))

    def pipelines(self) -> Iterable[AsyncPipeline]:
        return (self.branch,)

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        """Run the branch for every item and give back each name's reduced list.

        Raises:
            ParameterError: ``iterate_on`` is not set or is not a list.
            Exception: the failed item's exception, or an ``ExceptionGroup`` of several.

        Cancellation: every running item is cancelled, no further item starts, and nothing
        is given back.
        """
        items = self._items(scope, path)
        # Built of iterators in C, the scopes' included: no frame resumed per item for them.
        branches = zip(
            map(str, range(len(items))),
            repeat(self.branch),
            scope.with_items(self.iterate_as, items),
        )
        results = await fan_out(
            ctx,
            log,
            path,
            branches,
            fail_fast=self.fail_fast,
            max_concurrency=self.max_concurrency,
        )
        names = dict.fromkeys(self._names)
        for assigned in results:
            # A step kind this module does not know may assign names it could not foresee.
            # An item that assigned nothing (often) is not compared: two views per item.
            if assigned and not names.keys() >= assigned.keys():
                names.update(dict.fromkeys(assigned))
        reducer = self.reducer
        collected: dict[str, Any] = {}
        for name in names:
            values = [assigned.get(name) for assigned in results]
            collected[name] = values if reducer is None else reducer(values)
        scope.publish(collected, log)

    def _items(self, scope: Scope, path: str) -> list[Any] | tuple[Any, ...]:
        try:
            items = scope.values[self.iterate_on]
        except KeyError:
            raise ParameterError(
                path,
                f"'iterate_on' names parameter {self.iterate_on!r}, which is not set "
                f"(available parameters: {available_names(scope.values)})",
            ) from None
        if not isinstance(items, list | tuple):
            raise ParameterError(
                path,
                f"'iterate_on' parameter {self.iterate_on!r} must be a list (got "
                f"{type(items).__name__} {short_repr(items)})",
            )
        return items
