"""A Map item's function that takes its item alone is bound without a loop or a call
(``Binder.single``, ``_ItemScope.arguments``): the arguments, conversions and errors are
those of binding over the item's view of its parent's values."""

from __future__ import annotations

from typing import Any

import pytest

from runnable_trio._errors import ParameterError
from runnable_trio._params import Binder
from runnable_trio._scope import Scope, _WithItem


def _cases() -> list[Any]:
    def bare(item): ...  # type: ignore[no-untyped-def]

    def typed(item: int) -> None: ...

    def converted(item: float) -> None: ...

    def refused(item: list[int]) -> None: ...

    def anything(item: Any) -> None: ...

    def optional(item: int = 1) -> None: ...

    def other(other: str) -> None: ...

    def missing(nowhere: str) -> None: ...

    def keyword(*, item: int) -> None: ...

    return [bare, typed, converted, refused, anything, optional, other, missing, keyword]


@pytest.mark.parametrize("function", _cases())
@pytest.mark.parametrize("item", [3, 3.5, "x", None])
@pytest.mark.parametrize("parent", [{"other": "o"}, {}, {"item": 9, "other": "o"}])
def test_an_items_one_argument_is_bound_as_over_its_view(
    function: Any, item: Any, parent: dict[str, Any]
) -> None:
    binder = Binder.of(function)
    assert binder.single is binder.arguments[0]
    [scope] = Scope(parent).with_items("item", [item])
    try:
        expected: Any = binder.bind(_WithItem(parent, "item", item), "step")
    except ParameterError as exc:
        expected = str(exc)
    try:
        found: Any = scope.arguments(binder, "step")
    except ParameterError as exc:
        found = str(exc)
    assert found == expected
    if not isinstance(found, str):
        assert [type(value) for value in found.values()] == [
            type(value) for value in expected.values()
        ]


def test_only_a_function_of_one_argument_and_no_rest_has_a_single_one() -> None:
    def none() -> None: ...

    def two(item: int, other: str) -> None: ...

    def rest(item: int, **kwargs: Any) -> None: ...

    def positional(item: int, /) -> None: ...

    for function in (none, two, rest, positional):
        assert Binder.of(function).single is None, function


@pytest.mark.parametrize(("item", "bound"), [(3, False), (3.5, True)])
def test_the_item_alone_of_its_own_type_is_not_bound_by_a_call(
    monkeypatch: pytest.MonkeyPatch, item: Any, bound: bool
) -> None:
    def typed(item: int) -> None: ...

    calls = []
    real = Binder.bind_item

    def counted(self: Binder, *args: Any) -> Any:
        calls.append(args)
        return real(self, *args)

    monkeypatch.setattr(Binder, "bind_item", counted)
    [scope] = Scope({}).with_items("item", [item])
    found = scope.arguments(Binder.of(typed), "step")
    assert found == {"item": 3}
    assert type(found["item"]) is int
    assert len(calls) == int(bound)  # converted: the general way
