"""``Stub``: a step that does nothing and succeeds, as a placeholder while a pipeline is drafted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._pipeline import BaseStep
from ._validators import checked_init

if TYPE_CHECKING:
    from ._runlog import StepLog
    from ._runner import RunContext
    from ._scope import Scope

__all__ = ["Stub"]


@checked_init
@attrs.frozen(kw_only=True, init=False)
class Stub(BaseStep):
    """A placeholder step: it succeeds without doing anything.

    Like the reference's ``Stub``, it accepts any other keyword (the fields of the step it
    stands in for); they are kept in ``extra`` and otherwise ignored.
    """

    kind = "stub"

    extra: dict[str, Any] = attrs.field(factory=dict)

    def __init__(
        self,
        name: str,
        *,
        on_failure: Any = None,
        terminate_with_success: bool = False,
        terminate_with_failure: bool = False,
        timeout: float | None = None,
        **extra: Any,
    ) -> None:
        self.__attrs_init__(
            name=name,
            on_failure=on_failure,
            terminate_with_success=terminate_with_success,
            terminate_with_failure=terminate_with_failure,
            timeout=timeout,
            extra=extra,
        )

    async def _execute(self, ctx: RunContext, scope: Scope, path: str, log: StepLog) -> None:
        return None
