"""A run's records as the durable stores keep them, written without the generic converter:
the file store's journal lines and record, the PostgreSQL store's journal rows and record
column (the same texts), and the journal's rules (:func:`journal_lines`,
:func:`place_journal`).

A chain writes one journal line per step, so the line's cost is the store's per-step cost;
and the run's final record holds every step again. :func:`step_line` writes the JSON text of
``{"step": step_log_to_dict(step)}`` directly, :func:`run_record` that of the whole record
after its summary: the record's own fields (names, statuses, times) go through the C string
escaper, only the user's values (parameters, metrics, assigned) through ``_jsoncodec.dumps``
where they are not plain (``_jsontext``), and the definition through the encoder a shared
description at a time (``_deftext``), so no intermediate dicts are built and the generic
converter is not walked (through it, the record of a run took 13 us per step).

The records are read back by ``_recordread`` (one schema: the tests hold the text to what the
generic writer writes and that module's records to what the generic reader builds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from ._deftext import definition_text
from ._jsoncodec import loads
from ._jsontext import period, quote, text_or_null, time_text, values_text
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


class _Quoted(dict[str, str]):
    """Each status's JSON, looked up (a subscript, not the escaper: several per step); any
    other text is quoted as it is asked for, and not kept."""

    __slots__ = ()

    def __missing__(self, status: str) -> str:
        return quote(status)


_STATUSES = _Quoted({status: quote(status) for status in Status})


def _attempt(attempt: Attempt) -> str:
    return (
        f'{{"number":{int(attempt.number)},{period(attempt.started_at, attempt.ended_at)},'
        f'"status":{_STATUSES[attempt.status]},'
        f'"error_type":{text_or_null(attempt.error_type)},'
        f'"error_message":{text_or_null(attempt.error_message)},'
        f'"parameters_in":{values_text(attempt.parameters_in)},'
        f'"parameters_out":{values_text(attempt.parameters_out)},'
        f'"metrics":{values_text(attempt.metrics)}}}'
    )


def _entry(entry: CatalogEntry) -> str:
    return (
        f'{{"name":{quote(entry.name)},"sha256":{quote(entry.sha256)},'
        f'"stage":{quote(entry.stage)},"parameter":{text_or_null(entry.parameter)}}}'
    )


def _ends(branches: dict[str, BranchLog]) -> str:
    """The branches of a composite step's own journal line: each as the record writes it
    (:func:`_branch_parts`), without its steps (in the journal already). In one
    comprehension: a Parallel of n branches writes n, which through a generator and a call
    each cost 12,000 instructions."""
    statuses = _STATUSES
    return ",".join(
        [
            # A branch's name is mostly its key itself (fan_out's), quoted once; its status
            # looked up: one quoting of three per branch.
            f'{(key := quote(name))}:{{"name":{key if b.name is name else quote(b.name)},'
            f'"status":{statuses[b.status]},"steps":{{}}}}'
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
        f'{{"name":{quote(step.name)},"kind":{quote(step.kind)},"path":{quote(step.path)},'
        f'"status":{_STATUSES[step.status]},"attempts":[{attempts}],"branches":{{',
        f'}},"catalog":[{catalog}],"assigned":{values_text(step.assigned)}}}',
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
    statuses = _STATUSES
    # The name of a Map item's step is every item's: quoted once (the last one met).
    inner_name, inner_text = "", '""'
    for name, branch in branches.items():
        steps = branch.steps
        if len(steps) == 1:
            [(inner, step)] = steps.items()
            if not step.branches:
                text = texts.get(step) if texts is not None else None
                if text is None:
                    text = _step(step, texts)
                if inner is not inner_name:
                    inner_name, inner_text = inner, quote(inner)
                # The branch's name quoted once where it is its key (as in _ends).
                key = quote(name)
                batch.append(
                    f'{key}:{{"name":{key if branch.name is name else quote(branch.name)},'
                    f'"status":{statuses[branch.status]},'
                    f'"steps":{{{inner_text}:{text}}}}}'
                )
                if len(batch) == _BATCH:
                    yield separator + ",".join(batch)
                    batch, separator = [], ","
                continue
        if batch:
            yield separator + ",".join(batch)
            batch, separator = [], ","
        yield (
            f'{separator}{quote(name)}:{{"name":{quote(branch.name)},'
            f'"status":{statuses[branch.status]},"steps":{{'
        )
        separator = ","
        between = ""
        for inner, step in steps.items():
            if step.branches:
                yield f"{between}{quote(inner)}:"
                yield from _step_parts(step, texts)
            else:
                yield f"{between}{quote(inner)}:{_step_of(step, texts)}"
            between = ","
        yield "}}"
    if batch:
        yield separator + ",".join(batch)


#: Branches of one step whose entries make one piece of :func:`_branch_parts` (a Map item's:
#: about 400 bytes).
_BATCH = 64


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
    return f"{{{quote(key)}:{_step(step)}}}"


def _code(code: CodeIdentity | None) -> str:
    if code is None:
        return "null"
    dirty = "null" if code.dirty is None else "true" if code.dirty else "false"
    commit, error = text_or_null(code.commit), text_or_null(code.error)
    return f'{{"commit":{commit},"dirty":{dirty},"error":{error}}}'


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
        f'"run_id":{quote(run_log.run_id)},"status":{quote(run_log.status)},'
        f'"tag":{quote(run_log.tag)},"pipeline_name":{quote(run_log.pipeline_name)},'
    )
    times = period(run_log.started_at, run_log.ended_at)
    yield (
        f'{{"_summary":{{{names}{times},"writer":{text_or_null(writer)}}},'
        f'"run_id":{quote(run_log.run_id)},"tag":{quote(run_log.tag)},'
        f'"pipeline_name":{quote(run_log.pipeline_name)},"status":{quote(run_log.status)},'
        f"{times},"
        f'"parameters_in":{values_text(run_log.parameters_in)},'
        f'"parameters_out":{values_text(run_log.parameters_out)},"steps":{{'
    )
    separator = ""
    for name, step in run_log.steps.items():
        if step.branches:  # a Map's: in pieces (see _branch_parts)
            yield f"{separator}{quote(name)}:"
            yield from _step_parts(step, texts)
        else:
            yield f"{separator}{quote(name)}:{_step_of(step, texts)}"
        separator = ","
    yield (
        f'}},"step":{text_or_null(run_log.step)},"error_type":{text_or_null(run_log.error_type)},'
        f'"error_message":{text_or_null(run_log.error_message)},"definition":'
    )
    yield definition_text(run_log.definition)
    retried = ",".join(map(time_text, run_log.retried_at))
    yield (
        f',"definition_hash":{quote(run_log.definition_hash)},"code":{_code(run_log.code)},'
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
        # _step's text of a step with one attempt, no branch and no catalog entry (a chain's
        # every step, a Map's every item), written here in one piece: the same text, with
        # fewer calls and joins (the file store's cost per step is mostly this text; a
        # function of its own was a frame per step more). Empty mappings and known statuses
        # inline: a call each otherwise (a Map item that assigns nothing has three empty
        # mappings, a Parallel branch's task four).
        [attempt] = attempts
        error_type, error_message = attempt.error_type, attempt.error_message
        given, out = attempt.parameters_in, attempt.parameters_out
        metrics, assigned = attempt.metrics, step.assigned
        statuses = _STATUSES
        text = (
            f'{{"name":{quote(step.name)},"kind":{quote(step.kind)},"path":{quote(path)},'
            f'"status":{statuses[step.status]},'
            f'"attempts":[{{"number":{int(attempt.number)},'
            f"{period(attempt.started_at, attempt.ended_at)},"
            f'"status":{statuses[attempt.status]},'
            f'"error_type":{"null" if error_type is None else quote(error_type)},'
            f'"error_message":{"null" if error_message is None else quote(error_message)},'
            f'"parameters_in":{values_text(given) if given else "{}"},'
            f'"parameters_out":{values_text(out) if out else "{}"},'
            f'"metrics":{values_text(metrics) if metrics else "{}"}}}],"branches":{{}},'
            f'"catalog":[],"assigned":{values_text(assigned) if assigned else "{}"}}}'
        )
        state = _LEAF_STATES.get(step.status)
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
