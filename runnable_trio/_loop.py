"""``Loop``: run a branch again and again, carrying parameters from one iteration to the next.

The loop runs do-while style: iteration ``i`` (from 0) runs the branch with ``index_as``
bound to ``i``; afterwards, if the parameter ``break_on`` is ``True`` the loop stops, and it
stops anyway after ``max_iterations`` iterations. Reaching the limit is not a failure: the
limit is a guard, and the step gives back what the last iteration left.

All iterations share one child scope, so a name an iteration assigns is what the next one
sees; the step gives back every name assigned during the loop, with its last value. Iteration
``i`` is recorded and attributed under ``name.i``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from ._errors import ParameterError, PipelineDefinitionError
from ._fanout import CompositeStep, check_name_field, check_pipeline, check_positive_int
from ._pipeline import AsyncPipeline
from ._runlog import BranchLog
from ._runner import join_path, run_branch
from ._validators import checked_init

if TYPE_CHECKING:
    from ._runlog import StepLog
    from ._runner import RunContext
    from ._scope import Scope

__all__ = ["Loop"]


@checked_init
@attrs.frozen(kw_only=True)
class Loop(CompositeStep):
    """Run ``branch`` until the parameter ``break_on`` is True, at most ``max_iterations`` times.

    Args:
        name: the step's name (unique within its pipeline, no ``.`` or ``%``).
        branch: the pipeline run at each iteration.
        max_iterations: the most iterations run (an int >= 1).
        break_on: the bool parameter checked after each iteration; ``True`` ends the loop.
            Not set yet means ``False``; any other value fails the step, as in the reference
            (a string ``"false"`` must not end a loop by being truthy).
        index_as: the parameter name the iteration index (0, 1, ...) is bound to.
        on_failure, terminate_with_success, terminate_with_failure, timeout: see
            :class:`BaseStep`; ``timeout`` covers the whole loop.

    Raises:
        PipelineDefinitionError: at build time, for any unusable argument.
    """

    kind = "loop"

    branch: AsyncPipeline = attrs.field(kw_only=False, validator=check_pipeline)
    max_iterations: int = attrs.field(kw_only=False, validator=check_positive_int)
    break_on: str = attrs.field(kw_only=False, validator=check_name_field)
    index_as: str = attrs.field(kw_only=False, validator=check_name_field)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.index_as == self.break_on:
            raise PipelineDefinitionError(
                f"Loop {self.name!r}: 'index_as' and 'break_on' must be different parameters "
                f"(both are {self.index_as!r})"
            )

    def pipelines(self) -> Iterable[AsyncPipeline]:
        return (self.branch,)

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        """Run the iterations one after the other and give back what they assigned.

        Raises:
            ParameterError: ``break_on`` is set to something other than a bool.
            Exception: what an iteration failed with; later iterations do not run.

        Cancellation: the running iteration is cancelled; nothing is given back.
        """
        carried = scope.child()
        values = carried.writable()
        for index in range(self.max_iterations):
            values[self.index_as] = index
            key = str(index)
            record = log.branches[key] = BranchLog(key)
            await run_branch(ctx, self.branch, carried, join_path(path, key), record)
            done = values.get(self.break_on, False)
            if not isinstance(done, bool):
                raise ParameterError(
                    path,
                    f"'break_on' parameter {self.break_on!r} must be a bool after iteration "
                    f"{index} (got {type(done).__name__} {done!r})",
                )
            if done:
                break
        scope.publish(carried.assigned, log)
