"""The scopes a Parallel's branches start from (``Scope.branches``): one per branch, made as
each branch starts, each reading its parent's values until it assigns a name of its own."""

from __future__ import annotations

from itertools import islice

from runnable_trio._scope import Scope


def test_each_branch_reads_its_parents_values_and_assigns_on_its_own() -> None:
    parent = Scope({"x": 1})
    first, second = islice(parent.branches(), 2)
    assert first is not second
    assert dict(first.values) == dict(second.values) == {"x": 1}
    assert first.assigned == second.assigned == {}
    first.writable()["y"] = 2
    first.assigned["y"] = 2
    assert dict(first.values) == {"x": 1, "y": 2}
    assert dict(second.values) == dict(parent.values) == {"x": 1}
    assert second.assigned == parent.assigned == {}


def test_a_branch_scope_is_what_branch_gives() -> None:
    parent = Scope({"x": 1}, {"x": 1})
    (made,) = islice(parent.branches(), 1)
    assert type(made) is Scope
    assert made == parent.branch()
    assert made.assigned == {}  # what the parent assigned is not the branch's


def test_the_branches_of_a_map_item_see_its_item() -> None:
    item = Scope({"x": 1}).with_item("n", 5)
    first, second = islice(item.branches(), 2)
    assert dict(first.values) == dict(second.values) == {"x": 1, "n": 5}
    first.writable()["n"] = 6
    assert dict(second.values) == dict(item.values) == {"x": 1, "n": 5}
