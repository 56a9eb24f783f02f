"""Binomial checkpointing (``gradient="revolve"``): the offline schedule and its cost.

The schedule is checked against the optimum of the recursion it implements (a brute-force
minimum over every split, for small ``N``) and against Griewank's bounds: ``N <= C(s + r, s)``
steps with ``s`` snapshots and ``r`` advances of each step, ``r N - C(s + r, r - 1)`` advances in
all.  The solver's field evaluations are counted and must match the schedule.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from conftest import TimeMLP

from fdebench.engine import fdeint
from fdebench.engine.revolve import (
    Schedule,
    binomial_reach,
    checkpoints_for,
    repetitions,
)


@functools.cache
def fewest_advances(steps: int, snapshots: int) -> int:
    """The fewest advances that reverse ``steps`` with ``snapshots`` (brute force)."""
    if steps == 1:
        return 0
    if snapshots == 1:
        return steps * (steps - 1) // 2
    return min(a + fewest_advances(a, snapshots) + fewest_advances(steps - a, snapshots - 1)
               for a in range(1, steps))


def simulate(schedule: Schedule) -> tuple[list[int], int, list[int]]:
    """Run the schedule on step indices: advances of each step (the forward solve's
    included), the most snapshots held besides ``x_0``, and the order of the reversals."""
    n = schedule.n_steps
    advances = [1] * n  # the forward solve
    slots = {0, *schedule.forward}
    peak = len(slots) - 1
    current, reversed_ = n - 1, []
    for action in schedule.backward():
        kind = action[0]
        if kind == "restore":
            assert action[1] in slots
            current = action[1]
        elif kind == "advance":
            assert current == action[1] < action[2]
            for j in range(action[1], action[2]):
                advances[j] += 1
            current = action[2]
        elif kind == "store":
            assert current == action[1]
            slots.add(action[1])
            peak = max(peak, len(slots) - 1)
        elif kind == "free":
            slots.remove(action[1])
        else:
            assert kind == "reverse" and current == action[1]
            reversed_.append(action[1])
            current = None
    return advances, peak, reversed_


@pytest.mark.parametrize("checkpoints", [0, 1, 2, 3, 5])
def test_schedule_is_optimal_and_within_its_bounds(checkpoints):
    snapshots = checkpoints + 1
    for n in range(1, 48):
        schedule = Schedule(n, checkpoints)
        advances, peak, order = simulate(schedule)
        assert order == list(range(n - 1, -1, -1))
        assert peak <= checkpoints
        reps = repetitions(n, snapshots)
        assert max(advances) <= max(reps, 1)
        assert n <= binomial_reach(snapshots, reps)
        # the forward solve's advance of the last step is its own (revolve tapes it)
        assert sum(advances) - 1 == fewest_advances(n, snapshots)
        if n > 1:
            assert sum(advances) - 1 == reps * n - binomial_reach(snapshots + 1, reps - 1)


@pytest.mark.parametrize(("snapshots", "reps"), [(1, 3), (2, 2), (3, 3), (4, 2), (5, 4)])
def test_binomial_reach_is_tight(snapshots, reps):
    """``C(s + r, s)`` steps need ``r`` advances of some step; one step more needs ``r + 1``."""
    n = math.comb(snapshots + reps, snapshots)
    assert repetitions(n, snapshots) == reps
    assert repetitions(n + 1, snapshots) == reps + 1
    advances, _, _ = simulate(Schedule(n, snapshots - 1))
    assert max(advances) == reps


@pytest.mark.parametrize(("n_steps", "expected"), [(1, 0), (5, 0), (6, 1), (400, 7),
                                                   (6400, 17), (25600, 25)])
def test_default_checkpoints_recompute_each_step_at_most_four_times(n_steps, expected):
    c = checkpoints_for(n_steps)
    assert c == expected
    assert binomial_reach(c + 1, 4) >= n_steps
    assert c == 0 or binomial_reach(c, 4) < n_steps
    assert Schedule(n_steps, c).reps <= 4


class Counted(torch.nn.Module):
    def __init__(self, field):
        super().__init__()
        self.field, self.calls = field, 0

    def forward(self, t, y):
        self.calls += 1
        return self.field(t, y)


def _count(method, n, alpha=0.6, checkpoints=None, history="soe"):
    field = Counted(TimeMLP())
    y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    ys = fdeint(field, y0.requires_grad_(), t, alpha=alpha, method=method, gradient="revolve",
                history=history, revolve_checkpoints=checkpoints)
    forward = field.calls
    ys[-1].square().sum().backward()
    return forward, field.calls


@pytest.mark.parametrize(("method", "per_step"), [("euler", 1), ("abm", 2), ("l1", 1)])
@pytest.mark.parametrize("checkpoints", [None, 0, 3])
def test_field_evaluations_follow_the_schedule(method, per_step, checkpoints):
    """Forward ``N`` steps; backward: the schedule's advances beyond the first sweep and one
    taping per step.  With the default checkpoints at most ``5 N`` steps in all."""
    n = 120
    forward, total = _count(method, n, checkpoints=checkpoints)
    c = checkpoints_for(n) if checkpoints is None else checkpoints
    assert forward == per_step * n
    assert total == per_step * (fewest_advances_closed(n, c + 1) + 1 + n)
    if checkpoints is None:
        assert total <= 5 * per_step * n


def fewest_advances_closed(n: int, snapshots: int) -> int:
    reps = repetitions(n, snapshots)
    return reps * n - binomial_reach(snapshots + 1, reps - 1) if n > 1 else 0


def test_classical_schemes_are_checkpointed_too():
    """At alpha = 1 (no history) revolve checkpoints the one-step schemes' states."""
    forward, total = _count("euler", 60, alpha=1.0, history="auto")
    c = checkpoints_for(60)
    assert forward == 60
    assert total == fewest_advances_closed(60, c + 1) + 1 + 60
