"""``Parallel``: named branches run concurrently, their results merged into one scope.

Each branch starts with a copy of the parameters its parent has when the step starts and runs
in its own task of a nursery opened by the step, so the branches' events interleave in real
time. On success, the names each branch assigned merge into the parent scope. A name assigned
by two branches is a ``BranchError`` at fan-in: which branch "won" would depend on timing, and
a silent last-writer-wins would hide it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import BranchError
from ._fanout import CompositeStep, branches_converter, check_branches, fan_out
from ._pipeline import AsyncPipeline
from ._validators import check_bool, checked_init

if TYPE_CHECKING:
    from ._runlog import StepLog
    from ._runner import RunContext
    from ._scope import Scope

__all__ = ["Parallel"]


@checked_init
@attrs.frozen(kw_only=True)
class Parallel(CompositeStep):
    """Run every branch at the same time; the step succeeds when all of them have.

    Args:
        name: the step's name (unique within its pipeline, no ``.`` or ``%``).
        branches: branch name -> pipeline. A branch's steps are recorded and attributed
            under ``name.branch``. Branch names are non-empty and free of ``.`` and ``%``.
        fail_fast: if True (the default), the first failing branch cancels the others at
            once. If False, every branch runs to its end and the step then fails with all
            the errors (one error as itself, several as an ``ExceptionGroup``).
        on_failure, terminate_with_success, terminate_with_failure, timeout: see
            :class:`BaseStep`; ``timeout`` covers the whole step, every branch included.

    Raises:
        PipelineDefinitionError: at build time, for any unusable argument.
    """

    kind = "parallel"

    branches: Mapping[str, AsyncPipeline] = attrs.field(
        kw_only=False, converter=branches_converter, validator=check_branches
    )
    fail_fast: bool = attrs.field(default=True, validator=check_bool)

    def pipelines(self) -> Iterable[AsyncPipeline]:
        return self.branches.values()

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        """Run the branches concurrently and merge what they assigned into ``scope``.

        Raises:
            Exception: the failed branch's exception, or an ``ExceptionGroup`` of several.
            BranchError: two branches assigned the same name.

        Cancellation: every branch is cancelled; nothing is merged.
        """
        branches = self.branches
        keys = list(branches)
        # Built of iterators in C but for the scopes': one frame resumed per branch, not a
        # generator expression's and two calls.
        results = await fan_out(
            ctx,
            log,
            path,
            zip(keys, branches.values(), scope.branches(), strict=False),  # scopes never end
            fail_fast=self.fail_fast,
        )
        merged: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for key, assigned in zip(keys, results, strict=True):
            for name, value in assigned.items():
                if name in owners:
                    raise BranchError(
                        path,
                        f"branches {owners[name]!r} and {key!r} both assigned {name!r}; "
                        "give each branch's result its own name",
                    )
                owners[name] = key
                merged[name] = value
        scope.publish(merged, log)
