"""Cancellation from outside, at random points: teardown exactly once, nothing else.

Seeded trials (reproducible: a failure names its seed; see
:func:`tests.reliability_support.cancel_trial`) cancel random graphs with random short
deadlines, or from another task the moment a random setup or teardown starts. The
short run does a few hundred per backend in a few seconds; ``tests/test_stress.py``
runs thousands under ``ANYDEPENDS_STRESS=full``.
"""

from __future__ import annotations

import pytest

from .reliability_support import BACKENDS, TrialStats, cancel_trials

TRIALS = 250


def run_trials(backend: str, first_seed: int, count: int) -> TrialStats:
    """Run a batch of trials on *backend*; fail on any failed (or hung) trial."""
    stats = cancel_trials(backend, first_seed, count)
    assert not stats.failures, (
        f"{len(stats.failures)} of {count} trials failed:\n"
        + "\n".join(stats.failures[:8])
    )
    assert stats.trials == count
    return stats


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_cancellation_trials(backend: str) -> None:
    """Over a few hundred trials per backend, whatever the graph, the mode, the
    deadline or the dependency whose start triggers the cancellation: every completed
    setup is torn down exactly once and in a valid order, no teardown is cancelled,
    nothing is torn down that was not set up, nothing is left running, the container
    keeps working after a cancelled operation; and both outcomes (interrupted and
    completed) actually occur."""
    stats = run_trials(backend, 0, TRIALS)
    assert stats.interrupted > 0, stats
    assert stats.completed > 0, stats
