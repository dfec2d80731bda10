"""The randomised harness (``tests/harness.py``) over many seeds.

The normal suite runs :data:`DEFAULT_TRIALS` trials; more on demand::

    RUNNABLE_TRIO_TRIALS=10000 pytest -q tests/test_harness.py
    RUNNABLE_TRIO_SEED=123 RUNNABLE_TRIO_TRIALS=1 pytest -q tests/test_harness.py  # replay one

Seeds run from ``RUNNABLE_TRIO_SEED`` (random when unset); a failure names its seed.
"""

from __future__ import annotations

import collections
import os
import random

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
