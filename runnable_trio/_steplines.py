"""A run's records as the durable stores keep them, written without the generic converter:
the file store's journal lines and record, the PostgreSQL store's journal rows and record
column (the same texts), and the journal's rules (:func:`journal_lines`,
:func:`place_journal`).

A chain writes one journal line per step, so the line's cost is the store's per-step cost;
and the run's final record holds every step again. :func:`step_line` writes the JSON text of
``{"step": step_log_to_dict(step)}`` directly, :func:`run_record` that of the whole record
after its summary: the record's own fields (names, statuses, times) go through the C string
escaper, only the user's values (parameters, metrics, assigned) through ``_jsoncodec.dumps``
where they are not plain, and the definition through the encoder a shared description at a
time (:func:`_described`), so no intermediate dicts are built and the generic converter is
not walked (through it, the record of a run took 13 us per step).

The records are read back by ``_recordread`` (one schema: the tests hold the text to what the
generic writer writes and that module's records to what the generic reader builds).
"""

from __future__ import annotations

import datetime as dt
import json.encoder
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from ._jsoncodec import dumps, encoded, loads
from ._recordread import read_step
from ._runlog import (
    Attempt,
    BranchLog,
    CatalogEntry,
    CodeIdentity,
    RunLog,
    Status,
    StepLog,
    place_step,
)

__all__ = [
    "StepTexts",
    "journal_lines",
    "place_journal",
    "record_parts",
    "run_record",
    "step_line",
]

_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _time(value: dt.datetime | None) -> str:
    """The JSON of a time: its ``isoformat()``, quoted.

    A record's times are UTC (``utc_now``), two per attempt, and those of a run mostly share
    their minute: that minute's text is kept (the last one met), and a time within it gets
    only its seconds and fraction written, from tables. ``isoformat()`` formats each field
    through ``sprintf`` (~12,000 instructions a time: the dearest part of a step's journal
    line). Any other time (naive, another zone, a subclass) goes through ``isoformat()``.
    """
    if value is None:
        return "null"
    if type(value) is not _DATETIME or value.tzinfo is not _UTC:
        return f'"{value.isoformat()}"'
    global _minute
    start, end, prefix = _minute  # one read: a worker thread writing a record may replace it
    # Compared, not subtracted: a timedelta made per time cost more than the rest.
    if not start <= value < end:
        start = value.replace(second=0, microsecond=0)
        prefix = f'"{start.isoformat()[:_MINUTE_DIGITS]}'  # '"YYYY-MM-DDTHH:MM:'
        _minute = start, start + _A_MINUTE, prefix
    micro = value.microsecond
    if micro:
        return f'{prefix}{_TWO[value.second]}{_MICRO[micro // 1000]}{_THREE[micro % 1000]}+00:00"'
    return f'{prefix}{_TWO[value.second]}+00:00"'


def _period(started: dt.datetime, ended: dt.datetime | None) -> str:
    """The ``"started_at"`` and ``"ended_at"`` members of an attempt (or a run), as
    :func:`_time` writes them: in one call where both are UTC times in the kept minute (a
    step's start and end are mostly microseconds apart), their seconds and fractions written
    inline (a call of :func:`_time` a time otherwise: a step's journal line has two)."""
    start, end, prefix = _minute
    if (
        type(started) is _DATETIME
        and type(ended) is _DATETIME
        and started.tzinfo is _UTC
        and ended.tzinfo is _UTC
        and start <= started < end
        and start <= ended < end
    ):
        micro, second = started.microsecond, started.second
        begun = (
            f"{_TWO[second]}{_MICRO[micro // 1000]}{_THREE[micro % 1000]}"
            if micro
            else _TWO[second]
        )
        micro, second = ended.microsecond, ended.second
        done = (
            f"{_TWO[second]}{_MICRO[micro // 1000]}{_THREE[micro % 1000]}"
            if micro
            else _TWO[second]
        )
        return f'"started_at":{prefix}{begun}+00:00","ended_at":{prefix}{done}+00:00"'
    return f'"started_at":{_time(started)},"ended_at":{_time(ended)}'


_DATETIME = dt.datetime
_UTC = dt.UTC
_A_MINUTE = dt.timedelta(minutes=1)
_MINUTE_DIGITS = len("YYYY-MM-DDTHH:MM:")
#: The minute last written: its start, its end and its text up to the seconds.
_minute = (
    dt.datetime(2000, 1, 1, tzinfo=_UTC),
    dt.datetime(2000, 1, 1, 0, 1, tzinfo=_UTC),
    '"2000-01-01T00:00:',
)
_TWO = [f"{number:02d}" for number in range(60)]
_THREE = [f"{number:03d}" for number in range(1000)]
#: A fraction's dot and first three digits (its last three are in ``_THREE``).
_MICRO = [f".{number:03d}" for number in range(1000)]


def _value(value: object) -> str | None:
    """The JSON of a plain scalar as the encoder writes it; None for anything else."""
    kind = type(value)
    if kind is str:
        return _quote(value)  # type: ignore[arg-type]
    if kind is int:
        try:
            return int.__repr__(value)
        except ValueError:  # past the digit limit: the encoder's marker
            return None
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is float and value == value and value not in (_INF, -_INF):
        return float.__repr__(value)
    return None


_INF = float("inf")


def _values(values: Mapping[str, Any]) -> str:
    """A mapping of the user's values; all plain (the usual case) without the encoder."""
    if not values:
        return "{}"
    if len(values) == 1:  # the usual: one value (a chain's ``x``), no list made and joined
        [(name, value)] = values.items()
        if type(name) is str:
            kind = type(value)
            if kind is str:
                return f"{{{_quote(name)}:{_quote(value)}}}"
            if kind is int and _DIGITS_SAFE_BELOW < value < _DIGITS_SAFE:
                return f"{{{_quote(name)}:{value}}}"  # as in the loop below
    parts = []
    for name, value in values.items():
        # The usual values (str, int) inline: a call of _value per value otherwise.
        kind = type(value)
        if kind is str:
            text: str | None = _quote(value)
        elif kind is int and _DIGITS_SAFE_BELOW < value < _DIGITS_SAFE:
            text = f"{value}"  # an exact int's text, without int.__repr__ looked up and called
        else:
            text = _value(value)
        if text is None or type(name) is not str:
            return dumps(values)  # the encoder's own rules for everything else
        parts.append(f"{_quote(name)}:{text}")
    return "{" + ",".join(parts) + "}"


#: Ints below this in size are written as text whatever ``sys.set_int_max_str_digits`` says
#: (its least is 640 digits).
_DIGITS_SAFE = 10**600
_DIGITS_SAFE_BELOW = -_DIGITS_SAFE


def _status(status: str) -> str:
    return _STATUSES.get(status) or _quote(status)


#: Each status's JSON (a look-up rather than the escaper: three per step).
_STATUSES: dict[str, str] = {status: _quote(status) for status in Status}


def _attempt(attempt: Attempt) -> str:
    return (
        f'{{"number":{int(attempt.number)},{_period(attempt.started_at, attempt.ended_at)},'
        f'"status":{_status(attempt.status)},'
        f'"error_type":{_text(attempt.error_type)},'
        f'"error_message":{_text(attempt.error_message)},'
        f'"parameters_in":{_values(attempt.parameters_in)},'
        f'"parameters_out":{_values(attempt.parameters_out)},'
        f'"metrics":{_values(attempt.metrics)}}}'
    )


def _entry(entry: CatalogEntry) -> str:
    return (
        f'{{"name":{_quote(entry.name)},"sha256":{_quote(entry.sha256)},'
        f'"stage":{_quote(entry.stage)},"parameter":{_text(entry.parameter)}}}'
    )


def _ends(branches: dict[str, BranchLog]) -> str:
    """The branches of a composite step's own journal line: each as the record writes it
    (:func:`_branch_parts`), without its steps (in the journal already). In one
    comprehension: a Parallel of n branches writes n, which through a generator and a call
    each cost 12,000 instructions."""
    return ",".join(
        [
            f'{_quote(name)}:{{"name":{_quote(b.name)},"status":{_quote(b.status)},"steps":{{}}}}'
            for name, b in branches.items()
        ]
    )


def _step(step: StepLog, texts: StepTexts | None = None) -> str:
    head, tail = _around(step)
    if not step.branches:
        return head + tail
    if texts is _ENDS_ONLY:
        return f"{head}{_ends(step.branches)}{tail}"
    return "".join([head, *_branch_parts(step.branches, texts), tail])


def _around(step: StepLog) -> tuple[str, str]:
    """A step's text before the entries of its branches, and after them."""
    attempts = ",".join(map(_attempt, step.attempts))
    catalog = ",".join(map(_entry, step.catalog)) if step.catalog else ""
    return (
        f'{{"name":{_quote(step.name)},"kind":{_quote(step.kind)},"path":{_quote(step.path)},'
        f'"status":{_status(step.status)},"attempts":[{attempts}],"branches":{{',
        f'}},"catalog":[{catalog}],"assigned":{_values(step.assigned)}}}',
    )


def _step_parts(step: StepLog, texts: StepTexts | None) -> Iterator[str]:
    """The text of a step with branches in pieces, in order (:func:`_branch_parts`)."""
    head, tail = _around(step)
    yield head
    yield from _branch_parts(step.branches, texts)
    yield tail


def _branch_parts(branches: dict[str, BranchLog], texts: StepTexts | None) -> Iterator[str]:
    """The entries of a composite step's branches, comma-separated, in pieces: the entries
    of :data:`_BATCH` branches of one step each (a Map's items) joined, any other branch in
    parts of its own, a composite inside it in its parts (:func:`_step_parts`).

    A Map of n items has a record of n entries (100,000 items: 43 MB): in pieces, it is not
    made whole (and copied again by each text around it) before it is written. A Map item's
    entry is one f-string around its step's kept text: no call per item but the look-up.
    """
    batch: list[str] = []
    separator = ""
    for name, branch in branches.items():
        steps = branch.steps
        if len(steps) == 1:
            [(inner, step)] = steps.items()
            if not step.branches:
                text = texts.get(step) if texts is not None else None
                if text is None:
                    text = _step(step, texts)
                batch.append(
                    f'{_quote(name)}:{{"name":{_quote(branch.name)},'
                    f'"status":{_quote(branch.status)},"steps":{{{_quote(inner)}:{text}}}}}'
                )
                if len(batch) == _BATCH:
                    yield separator + ",".join(batch)
                    batch, separator = [], ","
                continue
        if batch:
            yield separator + ",".join(batch)
            batch, separator = [], ","
        yield (
            f'{separator}{_quote(name)}:{{"name":{_quote(branch.name)},'
            f'"status":{_quote(branch.status)},"steps":{{'
        )
        separator = ","
        between = ""
        for inner, step in steps.items():
            if step.branches:
                yield f"{between}{_quote(inner)}:"
                yield from _step_parts(step, texts)
            else:
                yield f"{between}{_quote(inner)}:{_step_of(step, texts)}"
            between = ","
        yield "}}"
    if batch:
        yield separator + ",".join(batch)


#: Branches of one step whose entries make one piece of :func:`_branch_parts` (a Map item's:
#: about 400 bytes).
_BATCH = 64


def _leaf(step: StepLog, attempt: Attempt) -> str:
    """:func:`_step` of a step with one attempt, no branch and no catalog entry (a chain's
    every step, a Map's every item), written in one piece: the same text, with fewer calls
    and joins (the file store's cost per step is mostly this text)."""
    error_type, error_message, metrics = attempt.error_type, attempt.error_message, attempt.metrics
    given, out, assigned = attempt.parameters_in, attempt.parameters_out, step.assigned
    statuses = _STATUSES
    # Empty mappings and known statuses inline: a call each otherwise (a Map item that
    # assigns nothing has three empty mappings, a Parallel branch's task four).
    return (
        f'{{"name":{_quote(step.name)},"kind":{_quote(step.kind)},"path":{_quote(step.path)},'
        f'"status":{statuses.get(step.status) or _status(step.status)},'
        f'"attempts":[{{"number":{int(attempt.number)},'
        f"{_period(attempt.started_at, attempt.ended_at)},"
        f'"status":{statuses.get(attempt.status) or _status(attempt.status)},'
        f'"error_type":{"null" if error_type is None else _quote(error_type)},'
        f'"error_message":{"null" if error_message is None else _quote(error_message)},'
        f'"parameters_in":{_values(given) if given else "{}"},'
        f'"parameters_out":{_values(out) if out else "{}"},'
        f'"metrics":{_values(metrics) if metrics else "{}"}}}],"branches":{{}},"catalog":[],'
        f'"assigned":{_values(assigned) if assigned else "{}"}}}'
    )


class StepTexts:
    """The text of finished steps with no branches, by path, as their journal lines wrote
    them (:func:`journal_lines`), for the run's final record (:func:`run_record`): a step's
    record is then encoded once, not again at the end (a Map of n items: n steps).

    A text is used only for the step it was made from, still as it was: the same object
    (held here, so its id stays its own), with the same status and numbers of attempts and
    catalog entries (one small int), still without branches (an ``on_failure`` branch goes
    in after its line). Neither the int nor the text is an object the cyclic GC tracks, and
    the step is the run's own record: a Map item that has ended leaves no more of them than
    before.
    """

    __slots__ = ("_states", "_steps", "_texts")

    def __init__(self) -> None:
        self._steps: dict[str, StepLog] = {}
        self._states: dict[str, int] = {}
        self._texts: dict[str, str] = {}

    def keep(self, step: StepLog, text: str, state: int | None) -> None:
        """Keep ``text`` for ``step``, whose :func:`_state` is ``state``."""
        if state is not None:
            path = step.path
            self._steps[path] = step
            self._states[path] = state
            self._texts[path] = text

    def get(self, step: StepLog) -> str | None:
        path = step.path
        if self._steps.get(path) is not step or step.branches:
            return None
        attempts = step.attempts
        if len(attempts) == 1 and not step.catalog:  # as journal_lines: a call otherwise
            state = _LEAF_STATES.get(step.status)
        else:
            state = _state(step)
        if self._states[path] != state:
            return None
        return self._texts[path]

    def clear(self) -> None:
        self._steps.clear()
        self._states.clear()
        self._texts.clear()


#: Passed as ``texts``: each branch as it ended, without its steps (a composite step's own
#: journal line: the steps inside are in the journal already).
_ENDS_ONLY = StepTexts()


def _state(step: StepLog) -> int | None:
    """The step's numbers of catalog entries and attempts and its status, as one int (exact:
    each part has bits of its own); None for a status that is not a ``Status``."""
    status = _STATUS_NUMBERS.get(step.status)
    if status is None:
        return None
    return (len(step.catalog) << 64 | len(step.attempts)) << _STATUS_BITS | status


_STATUS_NUMBERS = {status: number for number, status in enumerate(Status)}
_STATUS_BITS = len(Status).bit_length()
#: :func:`_state` of a step with one attempt and no catalog entry, by status (looked up for
#: each such step's line: a call otherwise).
_LEAF_STATES = {status: 1 << _STATUS_BITS | number for status, number in _STATUS_NUMBERS.items()}


def _step_of(step: StepLog, texts: StepTexts | None) -> str:
    if texts is not None:
        known = texts.get(step)
        if known is not None:
            return known
    return _step(step, texts)


def step_line(step: StepLog, key: str = "step") -> str:
    """The journal line ``{key: step}``: the text ``dumps({key: step_log_to_dict(step)})``."""
    return f"{{{_quote(key)}:{_step(step)}}}"


def _code(code: CodeIdentity | None) -> str:
    if code is None:
        return "null"
    dirty = "null" if code.dirty is None else "true" if code.dirty else "false"
    return f'{{"commit":{_text(code.commit)},"dirty":{dirty},"error":{_text(code.error)}}}'


# The JSON of the last few definitions written. A definition is shared by the runs of its
# pipeline and never modified (``_definition``), and a run writes it twice (as it starts, as
# it ends): a chain of 5,000 steps has a 1.3 MB definition, 2 us per step to encode each time.
# (Final records are written in worker threads: hence the lock.)
_definitions: dict[int, tuple[dict[str, Any], str]] = {}
_definitions_guard = threading.Lock()
_DEFINITIONS_KEPT = 4


def _definition(definition: dict[str, Any]) -> str:
    with _definitions_guard:
        found = _definitions.get(id(definition))
    if found is not None and found[0] is definition:
        return found[1]
    try:
        text = _described(definition, {})
    except (_NotPlain, RecursionError):
        text = dumps(definition)  # the encoder's own rules (and its markers)
    with _definitions_guard:
        if len(_definitions) >= _DEFINITIONS_KEPT:
            del _definitions[next(iter(_definitions))]
        _definitions[id(definition)] = definition, text  # held: its id is not reused meanwhile
    return text


class _NotPlain(Exception):
    """A value :func:`_described` does not write as the encoder would (left to it)."""


def _described(value: Any, texts: dict[int, str]) -> str:
    """The text ``dumps(value)`` of a definition, each dict met again (by identity) written
    once: its text kept in ``texts``.

    A definition shares the description of a step or pipeline met in several places (a
    Parallel of 1,000 copies of one task: ``_definition``'s ``_Context``), which the encoder
    writes again at each (33,000 instructions a branch, the dearest part of such a run's
    start). Walked here are only the dicts that may hold such descriptions (a pipeline's,
    with its ``steps``; a composite step's, with its ``branches`` or ``branch``) and the
    lists and dicts of ``branches`` in them; any other dict (a task step's) is the
    encoder's, whole, once: walking every value here would cost twice the encoder's time.
    Raises :class:`_NotPlain` where the text could differ from ``dumps``' (a key that is not
    a str, a value the encoder refuses).
    """
    if type(value) is list:
        for item in value:
            # A composite step (a list holds steps, not pipelines), looked for inline: a
            # call per step of a chain otherwise.
            if type(item) is dict and ("branches" in item or "branch" in item):
                return "[" + ",".join([_described(item, texts) for item in value]) + "]"
        return _plain(value)  # a chain's steps, none composite: the encoder's, whole
    if type(value) is not dict:
        return _plain(value)
    key = id(value)
    text = texts.get(key)
    if text is not None:
        return text
    if _holds(value):
        parts = []
        for name, item in value.items():
            if type(name) is not str:
                raise _NotPlain
            kind = type(item)
            if kind is str:  # the usual value inline: a call per value otherwise
                part = _quote(item)
            elif kind is dict and name == "branches":
                part = _branches(item, texts)
            elif kind is dict or kind is list:
                part = _described(item, texts)
            else:
                part = _plain(item)
            parts.append(f"{_quote(name)}:{part}")
        text = "{" + ",".join(parts) + "}"
    else:
        try:
            text = encoded(value)
        except (TypeError, ValueError, RecursionError):
            raise _NotPlain from None
    texts[key] = text
    return text


def _holds(described: dict[Any, Any]) -> bool:
    """Whether a description may hold others (a pipeline's, a composite step's)."""
    return "steps" in described or "branches" in described or "branch" in described


def _branches(branches: dict[Any, Any], texts: dict[int, str]) -> str:
    parts = []
    for name, branch in branches.items():
        if type(name) is not str:
            raise _NotPlain
        parts.append(f"{_quote(name)}:{_described(branch, texts)}")
    return "{" + ",".join(parts) + "}"


def _plain(value: object) -> str:
    """The encoder's text of ``value`` (:class:`_NotPlain` where ``dumps`` would rewrite it)."""
    text = _value(value)
    if text is not None:
        return text
    try:
        return encoded(value)
    except (TypeError, ValueError, RecursionError):
        raise _NotPlain from None


def run_record(run_log: RunLog, writer: str | None, texts: StepTexts | None = None) -> str:
    """The record with its summary first: the text ``dumps({"_summary": summary, **record})``
    where ``record`` is ``run_log_to_dict(run_log)`` and ``summary`` its ``run_id``,
    ``status``, ``tag``, ``pipeline_name``, ``started_at`` and ``ended_at``, and ``writer``;
    steps already encoded taken from ``texts`` (see :data:`StepTexts`)."""
    return "".join(record_parts(run_log, writer, texts))


def record_parts(
    run_log: RunLog, writer: str | None, texts: StepTexts | None = None
) -> Iterator[str]:
    """:func:`run_record`'s text in pieces, in order: what comes before the steps, each
    step's entry, the definition, what comes around it. A long run's record (a chain of
    5,000 steps: 4 MB) can then be written a part at a time, never held whole."""
    names = (
        f'"run_id":{_quote(run_log.run_id)},"status":{_quote(run_log.status)},'
        f'"tag":{_quote(run_log.tag)},"pipeline_name":{_quote(run_log.pipeline_name)},'
    )
    times = _period(run_log.started_at, run_log.ended_at)
    yield (
        f'{{"_summary":{{{names}{times},"writer":{_text(writer)}}},'
        f'"run_id":{_quote(run_log.run_id)},"tag":{_quote(run_log.tag)},'
        f'"pipeline_name":{_quote(run_log.pipeline_name)},"status":{_quote(run_log.status)},'
        f"{times},"
        f'"parameters_in":{_values(run_log.parameters_in)},'
        f'"parameters_out":{_values(run_log.parameters_out)},"steps":{{'
    )
    separator = ""
    for name, step in run_log.steps.items():
        if step.branches:  # a Map's: in pieces (see _branch_parts)
            yield f"{separator}{_quote(name)}:"
            yield from _step_parts(step, texts)
        else:
            yield f"{separator}{_quote(name)}:{_step_of(step, texts)}"
        separator = ","
    yield (
        f'}},"step":{_text(run_log.step)},"error_type":{_text(run_log.error_type)},'
        f'"error_message":{_text(run_log.error_message)},"definition":'
    )
    yield _definition(run_log.definition)
    retried = ",".join(map(_time, run_log.retried_at))
    yield (
        f',"definition_hash":{_quote(run_log.definition_hash)},"code":{_code(run_log.code)},'
        f'"retried_at":[{retried}]}}'
    )


# A run's journal: what a durable store (file, PostgreSQL) writes as each step finishes.


def journal_lines(
    run_log: RunLog, step: StepLog, parents_written: set[str], texts: StepTexts | None = None
) -> list[str]:
    """The journal lines for ``step``, which has just finished: its enclosing composites'
    own records not yet written (noted in ``parents_written``), then its own line (its text
    kept in ``texts`` for the final record if it has no branches).

    A composite step's record goes in once, before the first line of a step inside it:
    repeating it on every line would cost a Map of n items n copies. A composite's own line
    says only how each branch ended: the steps inside are in the journal already, and the
    reader keeps the steps it has placed (``place_step``).
    """
    lines = []
    path = step.path
    # Inside a composite step whose record is not written yet. Once the innermost one is
    # (its path is the step's without its branch and name), every one around it is too:
    # they go in outermost first, so the steps of a Map after its first do not walk them.
    if "." in path and path.rsplit(".", 2)[0] not in parents_written:
        for parent in _enclosing(run_log, path):
            if parent.path not in parents_written:
                parents_written.add(parent.path)
                lines.append(step_line(attrs.evolve(parent, branches={}), "parent"))
    if step.branches:
        # Written from the live record, its branches' steps left out: not from a copy with
        # a new BranchLog per branch (a Map of n items: n records made and dropped).
        lines.append(f'{{"step":{_step(step, _ENDS_ONLY)}}}')
        return lines
    attempts = step.attempts
    if len(attempts) == 1 and not step.catalog:
        text, state = _leaf(step, attempts[0]), _LEAF_STATES.get(step.status)
    else:
        text, state = _step(step), _state(step)
    if texts is not None:
        texts.keep(step, text, state)
    lines.append(f'{{"step":{text}}}')
    return lines


def place_journal(run_log: RunLog, lines: Iterable[str | bytes]) -> None:
    """Place the steps of journal ``lines`` in ``run_log``, stopping at a line that does not
    decode (the last one, cut short by a crash)."""
    parents: dict[str, StepLog] = {}
    for line in lines:
        try:
            entry = loads(line)
            if "parent" in entry:
                parent = read_step(entry["parent"])
                parents[parent.path] = parent
                continue
            step = read_step(entry["step"])
        except Exception:
            break
        place_step(run_log, step, parents)


def _enclosing(run_log: RunLog, path: str) -> list[StepLog]:
    """The live records of the composite steps around the step at ``path``, outermost first."""
    names = path.split(".")
    found: list[StepLog] = []
    steps = run_log.steps
    for depth in range(len(names) // 2):
        parent = steps.get(names[2 * depth])
        branch = parent.branches.get(names[2 * depth + 1]) if parent is not None else None
        if parent is None or branch is None:
            break
        found.append(parent)
        steps = branch.steps
    return found
