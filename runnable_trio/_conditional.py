"""``Conditional``: run the one branch chosen by a parameter's value.

The branch whose key equals ``str(value)`` runs, in a child scope; the names it assigned are
the step's results. Matching on ``str(value)`` lets a bool or an int choose a branch keyed
``"True"`` or ``"3"``, as in the reference. An enum member chooses by its value's text, for
every kind of enum: ``str()`` of a ``StrEnum`` or ``IntEnum`` member is already its value,
but ``str(Color.RED)`` of a plain ``Enum`` is ``"Color.RED"``, which no key would sensibly
be, so ``Color.RED = "red"`` chooses ``"red"`` and ``Level.HIGH = 3`` chooses ``"3"``.

No matching branch is a ``BranchError`` naming the value and the keys, recorded like any
failure: doing nothing would hide the mistake until a later step missed the branch's results.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from ._errors import BranchError, ParameterError, available_names
from ._fanout import CompositeStep, branches_converter, check_branches, check_name_field
from ._pipeline import AsyncPipeline
from ._runlog import BranchLog
from ._runner import join_path, run_branch
from ._validators import checked_init

if TYPE_CHECKING:
    from ._runlog import StepLog
    from ._runner import RunContext
    from ._scope import Scope

__all__ = ["Conditional", "branch_key"]


def branch_key(value: object) -> str:
    """The key of the branch ``value`` chooses: ``str(value)``, an enum member's ``str(value)``."""
    return str(value.value if isinstance(value, enum.Enum) else value)


@checked_init
@attrs.frozen(kw_only=True)
class Conditional(CompositeStep):
    """Run the branch whose key equals ``str()`` of the parameter ``parameter``.

    An enum member chooses by its value: ``str(member.value)``, whatever the kind of enum.

    Args:
        name: the step's name (unique within its pipeline, no ``.`` or ``%``).
        parameter: the name of the parameter whose value chooses the branch.
        branches: key -> pipeline. Keys are non-empty and free of ``.`` and ``%``
            (underscores are fine); a branch's steps are recorded and attributed under
            ``name.key``.
        on_failure, terminate_with_success, terminate_with_failure, timeout: see
            :class:`BaseStep`.

    Raises:
        PipelineDefinitionError: at build time, for any unusable argument.
    """

    kind = "conditional"

    parameter: str = attrs.field(kw_only=False, validator=check_name_field)
    branches: Mapping[str, AsyncPipeline] = attrs.field(
        kw_only=False, converter=branches_converter, validator=check_branches
    )

    def pipelines(self) -> Iterable[AsyncPipeline]:
        return self.branches.values()

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        """Run the chosen branch and give back what it assigned.

        Raises:
            ParameterError: ``parameter`` is not set.
            BranchError: no branch has the key ``branch_key(value)``.
            Exception: what the branch failed with.

        Cancellation: the branch is cancelled; nothing is given back.
        """
        try:
            value = scope.values[self.parameter]
        except KeyError:
            raise ParameterError(
                path,
                f"parameter {self.parameter!r} is not set, so no branch can be chosen "
                f"(available parameters: {available_names(scope.values)})",
            ) from None
        log.attempts[-1].parameters_in[self.parameter] = value
        key = branch_key(value)
        pipeline = self.branches.get(key)
        if pipeline is None:
            raise BranchError(
                path,
                f"no branch for {self.parameter!r} = {value!r} (looked for key {key!r}; "
                f"branches: {', '.join(map(repr, self.branches))})",
            )
        record = log.branches[key] = BranchLog(key)
        child = scope.child()
        await run_branch(ctx, pipeline, child, join_path(path, key), record)
        scope.publish(child.assigned, log)
