"""Griewank's binomial checkpointing, offline: the order in which to reverse ``N`` steps.

A solve of ``N`` steps ``x_{n+1} = F_n(x_n)`` is reversed (each step's VJP taken, ``n = N - 1``
down to ``0``) with ``s`` *snapshots*: slots that hold a state, the initial state ``x_0``
included.  With each step *advanced* (recomputed without its graph) at most ``r`` times, the
longest solve that can be reversed is

    beta(s, r) = C(s + r, s)

steps (Griewank 1992, Optim. Methods Softw. 1:35-54; Griewank & Walther 2000, ACM TOMS
26:19-45, "revolve"), and the fewest advances in all are ``r N - beta(s + 1, r - 1)`` for
``beta(s, r - 1) < N <= beta(s, r)``.  A schedule reaching both splits ``[start, end)`` at
``start + a`` (:func:`split`): advance to the split, store it, reverse the right part with one
snapshot fewer, then the left part with the freed one.

Here the first sweep is the forward solve itself: it stores the states of the rightmost chain of
splits (:attr:`Schedule.forward`) and keeps its last state ``x_{N-1}``, so the backward pass
(:meth:`Schedule.backward`) begins with the last step's reversal.  With ``r`` advances of each
step (the forward solve's included) and one *taping* (its evaluation with a graph, for the VJP),
a forward plus backward pass evaluates each step at most ``r + 1`` times, ``(r + 1) N`` at most
in all.  ``N`` is known before the solve, so the schedule is the offline one (diffrax's online
default, ``sqrt(2 N)`` checkpoints, is the fallback for unknown ``N``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Schedule", "binomial_reach", "checkpoints_for", "repetitions", "split"]

#: ``("restore", n)``: the current state becomes snapshot ``n``; ``("advance", n, m)``: advance
#: the current state (at ``n``) to ``m``; ``("store", n)``: snapshot the current state (at
#: ``n``); ``("free", n)``: drop snapshot ``n``; ``("reverse", n)``: take step ``n``'s VJP from
#: the current state (at ``n``).
Action = tuple


def binomial_reach(snapshots: int, reps: int) -> int:
    """``beta(s, r) = C(s + r, s)``: the most steps ``s`` snapshots reverse with ``r`` advances
    of each step (0 when ``s < 1``)."""
    return math.comb(snapshots + reps, snapshots) if snapshots >= 1 and reps >= 0 else 0


def repetitions(n_steps: int, snapshots: int) -> int:
    """The least ``r`` with ``n_steps <= beta(snapshots, r)``."""
    reps = 0
    while binomial_reach(snapshots, reps) < n_steps:
        reps += 1
    return reps


def checkpoints_for(n_steps: int, max_reps: int = 4) -> int:
    """The fewest stored checkpoints ``c`` (snapshots besides ``x_0``) that reverse ``n_steps``
    with each step advanced at most ``max_reps`` times."""
    if max_reps < 1:
        raise ValueError(f"max_reps must be at least 1, got {max_reps}")
    c = 0
    while binomial_reach(c + 1, max_reps) < n_steps:
        c += 1
    return c


def split(length: int, snapshots: int) -> int:
    """Where to place the next snapshot in ``length >= 2`` steps with ``snapshots >= 2``: the
    offset ``a`` of an optimal schedule (module docstring).

    With ``r = repetitions(length, snapshots)``, the left part (``a`` steps, already advanced
    once) needs ``r - 1`` more advances, the right part (one snapshot fewer) ``r``:
    ``a = beta(s, r - 1)`` when the remainder needs all ``r`` repetitions, else
    ``a = length - beta(s - 1, r - 1)``.  Either reaches the fewest advances in all,
    ``r N - beta(s + 1, r - 1)`` (the two parts' counts add up to it by Pascal's rule).
    """
    reps = repetitions(length, snapshots)
    left = binomial_reach(snapshots, reps - 1)
    rest = binomial_reach(snapshots - 1, reps - 1)
    a = left if length - left > rest else length - rest
    return min(max(a, 1), length - 1)


@dataclass(frozen=True)
class Schedule:
    """Reverse ``n_steps`` steps with ``checkpoints`` stored states besides ``x_0``."""

    n_steps: int
    checkpoints: int

    @property
    def snapshots(self) -> int:
        return self.checkpoints + 1

    @property
    def reps(self) -> int:
        """The most advances of any step (the forward solve's included)."""
        return max(repetitions(self.n_steps, self.snapshots), 1)

    @property
    def forward(self) -> tuple[int, ...]:
        """The steps whose states the forward solve stores, increasing."""
        stored, start, snapshots = [], 0, self.snapshots
        while self.n_steps - start > 1 and snapshots > 1:
            start += split(self.n_steps - start, snapshots)
            stored.append(start)
            snapshots -= 1
        return tuple(stored)

    def backward(self) -> Iterator[Action]:
        """The actions of the backward pass (see :data:`Action`), from the forward solve's
        last state ``x_{N-1}``, its stored states and ``x_0``."""
        if self.n_steps:
            yield from self._reverse(0, self.n_steps, self.snapshots, True)

    def _reverse(self, start: int, end: int, snapshots: int, spine: bool) -> Iterator[Action]:
        """Reverse ``[start, end)`` from snapshot ``start``; ``spine``: the forward solve stored
        this part's splits and its last state is current."""
        if end - start == 1:
            if not spine:
                yield ("restore", start)
            yield ("reverse", start)
        elif snapshots == 1:
            for n in range(end - 1, start - 1, -1):
                if not (spine and n == end - 1):
                    yield ("restore", start)
                    if n > start:
                        yield ("advance", start, n)
                yield ("reverse", n)
        else:
            mid = start + split(end - start, snapshots)
            if not spine:
                yield ("restore", start)
                yield ("advance", start, mid)
                yield ("store", mid)
            yield from self._reverse(mid, end, snapshots - 1, spine)
            yield ("free", mid)
            yield from self._reverse(start, mid, snapshots, False)
