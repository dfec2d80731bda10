"""The randomised harness (``tests/harness.py``) over many seeds.

The normal suite runs :data:`DEFAULT_TRIALS` trials; more on demand::

    RUNNABLE_TRIO_TRIALS=10000 pytest -q tests/test_harness.py
    RUNNABLE_TRIO_SEED=123 RUNNABLE_TRIO_TRIALS=1 pytest -q tests/test_harness.py  # replay one
    RUNNABLE_TRIO_COMPAT_TRIALS=1000 pytest -q tests/test_harness.py -k compat

The compat leg (``tests/harness_compat.py``, under a plain asyncio loop) does not raise
``SystemExit`` from tasks (compat's side of issue 9 point 3 is compat's own), and reports the
trials that hit issue 9 point 2 (a consumer cancelled before its run starts leaves the record
``PROCESSING``) as an expected failure until compat fixes it; any other broken check fails.

Seeds run from ``RUNNABLE_TRIO_SEED`` (random when unset); a failure names its seed.
"""

from __future__ import annotations

import collections
import os
import random

import pytest
import trio
import trio.testing

from tests.harness import LEAVES, SURFACES, run_trial

DEFAULT_TRIALS = 200


def trial_plan() -> tuple[int, int]:
    """(first seed, number of trials) from the environment."""
    count = int(os.environ.get("RUNNABLE_TRIO_TRIALS", DEFAULT_TRIALS))
    seed = os.environ.get("RUNNABLE_TRIO_SEED")
    first = int(seed) if seed else random.randrange(2**32)
    return first, count


async def test_random_pipelines_left_in_random_ways_keep_every_guarantee(
    autojump_clock: trio.testing.MockClock,
) -> None:
    first, count = trial_plan()
    print(f"harness: {count} trials from seed {first}")
    seen: collections.Counter[tuple[str, str]] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    for seed in range(first, first + count):
        trial = await run_trial(seed)
        seen[trial.surface, trial.leave] += 1
        outcomes[trial.outcome] += 1
    print(f"harness: {count} trials passed; outcomes {dict(outcomes)}")
    if count >= DEFAULT_TRIALS:
        # The trials cover every surface with every way of leaving, and every ending.
        assert {(s, leave) for s in SURFACES for leave in LEAVES} <= set(seen)
        assert {"left", "cancelled", "failed", "consumer error"} <= set(outcomes)


DEFAULT_COMPAT_TRIALS = 20


def test_compat_under_asyncio_run_keeps_every_guarantee() -> None:
    import asyncio

    from tests.harness_compat import KnownCompatBug, run_compat_trial

    first, _ = trial_plan()
    count = int(os.environ.get("RUNNABLE_TRIO_COMPAT_TRIALS", DEFAULT_COMPAT_TRIALS))
    print(f"harness (compat): {count} trials from seed {first}")
    outcomes: collections.Counter[str] = collections.Counter()

    known: list[str] = []

    async def main() -> None:
        for seed in range(first, first + count):
            try:
                trial = await run_compat_trial(seed)
            except KnownCompatBug as bug:
                known.append(str(bug))
                continue
            outcomes[trial.outcome] += 1

    # A plain asyncio loop, as asyncio.run would make (see test_compat_asyncio.py for why
    # the factory is explicit).
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        runner.run(main())
    print(f"harness (compat): {count} trials passed; outcomes {dict(outcomes)}")
    if known:
        # Every other check held; these trials hit a compat bug already filed, which the
        # compat engineer is fixing. Once fixed, this test passes outright.
        pytest.xfail(f"{len(known)} trials hit a known compat bug: {known[0]}")
