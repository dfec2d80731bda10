"""``NoPublicConstructor``: for classes only the library builds (as Trio does for its channels).

Calling such a class raises ``TypeError`` saying what builds it; the library builds instances
with ``cls._create(...)``. ``isinstance`` checks and annotations work as for any class.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["NoPublicConstructor"]

_T = TypeVar("_T")


class NoPublicConstructor(type):
    """Metaclass: ``Class(...)`` is refused; ``Class._create(...)`` builds an instance."""

    #: What builds instances, for the error message (set by each class).
    _built_by: str

    def __call__(cls, *args: object, **kwargs: object) -> Any:
        raise TypeError(
            f"runnable_trio.{cls.__qualname__} has no public constructor: "
            f"{getattr(cls, '_built_by', 'the library')} builds it"
        )

    def _create(cls: type[_T], *args: object, **kwargs: object) -> _T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc,no-any-return]
