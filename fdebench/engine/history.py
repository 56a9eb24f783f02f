"""History sums of the fractional schemes: Toeplitz (lag-indexed) convolutions over a buffer.

Every fractional scheme combines its stored history as a discrete convolution,

* ``past(m) = sum_{i<m} k[m - i] * buffer[i]`` (the forward recurrence; in the adjoint's backward
  pass also used to rebuild a step's input), targets ``m`` requested one by one, and
* ``future(j) = sum_{i>j} k[i - j] * buffer[i]`` (its adjoint: the same convolution run backward
  in time over the adjoint states), targets ``j`` requested newest first,

where ``buffer`` is the scheme's ``(N + 1) x |y|`` history buffer and ``k`` a kernel of length
``N + 1`` (or ``K`` kernels stacked, for ``K`` sums at once; ``future`` may sum several
``(buffer, kernel)`` terms).  The sources of a target are complete when it is requested: rows
``< m`` for ``past`` in increasing order, rows ``> j`` for ``future``; in decreasing order
``past`` may read only rows ``<= m`` (the backward pass has overwritten the others).

Two algorithms compute the same sums (``fdeint(..., history=...)``):

``stepwise``
    One matrix-vector product per target over the whole history: ``O(N^2 |y|)`` operations and
    ``O(N^2 |y|)`` memory traffic per solve (every step reads the buffer), no workspace.

``fast``
    The same discrete sums up to rounding, blocked (:class:`Fast`):

    * *online* targets (increasing ``past``, decreasing ``future``) follow the relaxed
      (divide-and-conquer) order of Hairer, Lubich & Schlichte (SIAM J. Sci. Stat. Comput.
      6:532-541, 1985; Garrappa's ``fde12``/``flmm2`` codes use it): when target ``p`` is
      requested and ``s`` is the largest power of two dividing its offset in the current block,
      the ``s`` sources just completed are applied to the next ``s`` targets at once, a Toeplitz
      matrix-matrix product (:mod:`fdebench.engine.toeplitz`: dense, or from ``block_min`` rows
      on a block-Toeplitz product through a DFT over the block index); only the last ``< leaf``
      sources of a target are summed step by step.  Partial sums are kept for one *block* of
      targets; when a block begins, all earlier sources (its *far field*) are applied to it in
      one product.
    * *offline* targets (decreasing ``past``: rebuilding inputs in the adjoint's backward pass)
      are computed a block at a time by one product of the sources below the block.

    Cost per sum, ``N`` steps: the relaxed part applies products of ``s = leaf, 2 leaf, ...``
    rows, ``N / s`` of each; dense they cost ``s^2 |y|`` multiply-adds, as block-DFT products
    ``O(s^1.5 |y|)`` (see :mod:`fdebench.engine.toeplitz`), so ``O(N^1.5 |y|)`` in all (with an
    FFT over the block index it would be ``O(N log^2 N |y|)``; matrix products are faster at
    the block counts this needs up to ``N ~ 10^5``), plus ``O(N leaf |y|)`` step sums.  Every
    product reads its rows once, not once per step.  The far fields of bounded blocks of ``B``
    rows cost ``O(N^2 / B)`` more, as matrix-matrix products (``B`` is 6% of ``N``).

    Memory: at most ``fraction`` (8%) of one ``(N + 1) x |y|`` buffer per sum (``share`` of
    it when two sums are live at once): the block's partial sums (``K x B x |y|``) and the
    products' workspace (block-DFT products in column chunks, dense ones in source chunks).
    When the scheme lends the rows of the targets not yet requested (``scratch``: the forward
    pass has not written them, or the backward pass will not read them again; one kernel), the
    partial sums live there: one block covers all targets, with no far field and no partial-sum
    workspace.

A third choice, ``soe``, changes the arithmetic: the kernel becomes a sum of exponentials and
the history ``K`` one-step modes, ``(K + 1) |y|`` of state and no buffer
(:mod:`fdebench.engine.schemes.compressed`).  It is an approximation of the scheme (relative
``soe_tol`` on every history weight), so ``auto`` never picks it.

The kernel's lag-0 entry is never used.  ``K``-row results have shape ``(K, |y|)``, one-kernel
results ``(|y|,)``, always fresh tensors the caller may modify.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import toeplitz

__all__ = ["HISTORIES", "Fast", "History", "Stepwise", "Tuning", "choose", "future", "past"]

#: valid values of ``fdeint(..., history=...)``; ``soe`` is not an algorithm of this module but
#: an approximation of the scheme (its compressed form, :mod:`fdebench.engine.schemes.compressed`)
HISTORIES = ("auto", "fast", "soe", "stepwise")


@dataclass(frozen=True)
class Tuning:
    """Sizes of the fast algorithm (chosen by measurement on one CPU thread; see the README)."""

    #: targets whose last ``< leaf`` sources are summed step by step (a power of two)
    leaf: int = 8
    #: products with fewer targets or sources than this are dense, the others block-DFT products
    block_min: int = 384
    #: workspace of one solve pass, as a fraction of one ``(N + 1) x |y|`` buffer
    fraction: float = 0.08
    #: part of a bounded budget given to the block's partial sums (the rest: products)
    acc_part: float = 0.75
    #: ``auto`` picks ``fast`` from this many steps on ...
    auto_min_steps: int = 64
    #: ... when the ``(N + 1) x |y|`` buffer has at least this many bytes (2 MiB)
    auto_min_bytes: int = 2**21
    #: columns of ``|y|`` per chunk of a block-DFT product, and the fewest worth it
    columns: int = 512
    min_columns: int = 64
    #: block length of the block-DFT products (``None``: :func:`toeplitz.block_size`)
    block: int | None = None


TUNING = Tuning()


def choose(history: str, n_steps: int, state_bytes: int, tuning: Tuning | None = None) -> str:
    """The algorithm ``history`` stands for: ``auto`` is ``fast`` for long solves of big states.

    Measured on one CPU thread (both sums of a solve, float32): below 2 MiB the buffer stays in
    cache and a stepwise sum is cheaper than the fast algorithm's per-step bookkeeping (fast
    took 1.4-1.7x the time at 1 MiB and less); from 2 MiB on fast took 0.15-0.9x, from N = 64.
    """
    tuning = tuning or TUNING
    if history != "auto":
        return history
    long = n_steps >= tuning.auto_min_steps
    big = (n_steps + 1) * state_bytes >= tuning.auto_min_bytes
    return "fast" if long and big else "stepwise"


class History:
    """One convolution over a buffer; call it with each target in turn."""

    def __call__(self, target: int) -> torch.Tensor:
        raise NotImplementedError


def past(
    algorithm: str, buffer: torch.Tensor, kernel: torch.Tensor, targets: range, *,
    scratch: bool = False, share: float = 1.0,
) -> History:
    """``m -> sum_{i<m} kernel[..., m - i] * buffer[i]`` for ``m`` in ``targets``, in that order.

    ``scratch``: rows of the targets not yet requested are free until requested (the forward
    pass has not written them).  ``share``: the part of the workspace budget this sum may use.
    """
    terms = [(buffer, kernel)]
    if algorithm == "stepwise":
        return Stepwise(terms, anticausal=False)
    return Fast(terms, targets, anticausal=False, scratch=scratch, share=share)


def future(
    algorithm: str, terms: Sequence[tuple[torch.Tensor, torch.Tensor]], targets: range, *,
    scratch: bool = False, share: float = 1.0,
) -> History:
    """``j -> sum over (buffer, kernel) in terms of sum_{i>j} kernel[..., i - j] * buffer[i]``.

    ``scratch``: the rows of the targets not yet requested in the first buffer are dead (nothing
    reads them again) and may hold partial sums.
    """
    if algorithm == "stepwise":
        return Stepwise(terms, anticausal=True)
    return Fast(terms, targets, anticausal=True, scratch=scratch, share=share)


class Stepwise(History):
    """The reference: one matrix-vector product over the whole history per target."""

    def __init__(self, terms: Sequence[tuple[torch.Tensor, torch.Tensor]], anticausal: bool):
        self.anticausal = anticausal
        # past: weights of target m are the contiguous slice [n - m, n) of the flipped kernel
        self.terms = [(b, k if anticausal else k.flip(-1)) for b, k in terms]

    def __call__(self, target: int) -> torch.Tensor:
        out = None
        for buffer, kernel in self.terms:
            n = kernel.shape[-1] - 1
            if self.anticausal:
                value = kernel[..., 1 : n - target + 1] @ buffer[target + 1 :]
            else:
                value = kernel[..., n - target : n] @ buffer[:target]
            out = value if out is None else out.add_(value)
        return out


class Fast(History):
    """The blocked relaxed evaluation of the module docstring (``history="fast"``).

    Positions: a target or source at row ``i`` has position ``i`` for ``past`` and ``N - i`` for
    ``future``, so that in both the sources of position ``p`` are the positions ``< p`` with
    weight ``k[p - q]``, and online targets come in increasing position.
    """

    def __init__(
        self, terms: Sequence[tuple[torch.Tensor, torch.Tensor]], targets: range, *,
        anticausal: bool, scratch: bool, share: float, tuning: Tuning | None = None,
    ) -> None:
        self.tuning = tuning = tuning or TUNING
        first = terms[0][0]
        self.n = n = first.shape[0] - 1
        self.numel = first.shape[1]
        self.rev = anticausal
        self.squeeze = terms[0][1].dim() == 1
        self.k = terms[0][1].reshape(-1, n + 1).shape[0]
        self.terms = [self._term(b, k) for b, k in terms]
        positions = [self._pos(targets[0]), self._pos(targets[-1])] if len(targets) else [0, 0]
        self.online = len(targets) < 2 or positions[1] > positions[0]
        self.p_min, self.p_max = min(positions), max(positions)
        budget = int(tuning.fraction * share * (n + 1) * self.numel)
        self.scratch = scratch and self.online and self.k == 1
        if self.scratch:
            self.block, self.temp = self.p_max + 1, budget  # one block, from position 0 on
        else:
            self.block = max(1, int(tuning.acc_part * budget) // (self.k * self.numel))
            self.block = min(self.block, self.p_max - self.p_min + 1)
            self.temp = budget - self.k * self.block * self.numel
        self.acc: torch.Tensor | None = None
        self.start = self.end = None  # the current block of target positions [start, end)
        self.zeroed = 0  # its partial sums are initialised below this position
        self.next: int | None = None

    # ---- layout ---------------------------------------------------------------------------
    def _term(self, buffer: torch.Tensor, kernel: torch.Tensor):
        n = self.n
        k = kernel.reshape(-1, n + 1)
        # weights by lag in [-n - 1, n]: zero for lags <= 0, so a product's lower-left
        # triangle (a source at or after its target) adds nothing
        padded = torch.zeros(k.shape[0], 2 * n + 2, dtype=k.dtype, device=k.device)
        padded[:, n + 2 :] = k[:, 1:]
        near = k if self.rev else k.flip(-1)  # the per-step sums, as in Stepwise
        return buffer, padded, near

    def _pos(self, row: int) -> int:
        return self.n - row if self.rev else row

    def _rows(self, buffer: torch.Tensor, p0: int, p1: int) -> torch.Tensor:
        """Rows of positions ``[p0, p1)``, in reversed position order for ``future``."""
        return buffer[self.n - p1 + 1 : self.n - p0 + 1] if self.rev else buffer[p0:p1]

    def _acc(self, p0: int, p1: int) -> tuple[torch.Tensor, bool]:
        """Partial sums of target positions ``[p0, p1)`` as ``(K, p1 - p0, |y|)``, reversed?"""
        if self.scratch:
            return self._rows(self.terms[0][0], p0, p1).unsqueeze(0), self.rev
        return self.acc[:, p0 - self.start : p1 - self.start], False

    # ---- evaluation -----------------------------------------------------------------------
    def __call__(self, target: int) -> torch.Tensor:
        p = self._pos(target)
        return self._online(p) if self.online else self._offline(p)

    def _online(self, p: int) -> torch.Tensor:
        if self.next is not None and p != self.next:
            raise RuntimeError(f"fast history: target position {p} requested, {self.next} due")
        self.next = p + 1
        if self.end is None or p >= self.end:
            # a first block that starts within one leaf is anchored at 0: the step sums cover
            # the sources before it, so it has no far field
            start = 0 if self.end is None and p <= min(self.tuning.leaf, self.block - 1) else p
            self._begin(start, min(start + self.block, self.p_max + 1), p)
            self._product(0, start, start, self.end)  # the far field
        r = p - self.start
        s = r & -r
        if s >= self.tuning.leaf:  # apply the s sources just completed to the next s targets
            self._product(p - s, p, p, min(p + s, self.end))
        return self._near(self._acc_row(p), p - r % self.tuning.leaf, p)

    def _offline(self, p: int) -> torch.Tensor:
        if self.next is not None and p > self.next:
            raise RuntimeError(f"fast history: target position {p} after {self.next}")
        self.next = p
        if self.end is None or not self.start <= p < self.end:
            self._begin(max(self.p_min, p + 1 - self.block), p + 1, None)
            self._product(0, p, self.start, self.end)
        return self._near(self._acc_row(p), p, p)

    def _begin(self, start: int, end: int, first: int | None) -> None:
        """A new block of target positions, the first one requested ``first`` (online); its
        partial sums are zeroed as they are first used (just before a product adds to them: the
        rows are then in cache).  Rows of positions before ``first`` are sources, never zeroed.
        """
        self.start, self.end = start, end
        self.zeroed = start if first is None else first
        if not self.scratch and self.acc is None:
            buffer = self.terms[0][0]
            self.acc = buffer.new_empty(self.k, self.block, self.numel)

    def _zero_to(self, p1: int) -> None:
        """Zero the partial sums of the block's positions ``[zeroed, p1)``."""
        if p1 > self.zeroed:
            self._acc(self.zeroed, p1)[0].zero_()
            self.zeroed = p1

    def _acc_row(self, p: int) -> torch.Tensor:
        """The partial sums of target position ``p``, ``(K, |y|)``."""
        self._zero_to(p + 1)
        if self.scratch:
            row = self.n - p if self.rev else p
            return self.terms[0][0][row : row + 1]
        return self.acc[:, p - self.start]

    def _near(self, acc: torch.Tensor, q0: int, p: int) -> torch.Tensor:
        """``acc`` plus the sources ``[q0, p)`` of position ``p``, step by step (a fresh tensor)."""
        if q0 == p:
            out = acc.clone()
        else:
            length, n, out = p - q0, self.n, None
            for buffer, _, near in self.terms:
                if self.rev:
                    weights, rows = near[:, 1 : length + 1], buffer[n - p + 1 : n - q0 + 1]
                else:
                    weights, rows = near[:, n - length : n], buffer[q0:p]
                out = torch.addmm(acc, weights, rows) if out is None else out.addmm_(weights, rows)
        return out[0] if self.squeeze else out

    # ---- products -------------------------------------------------------------------------
    def _product(self, q0: int, q1: int, p0: int, p1: int) -> None:
        """Add ``sum_{q in [q0, q1)} k[p - q] x_q`` to the partial sums of ``p in [p0, p1)``."""
        sources, targets = q1 - q0, p1 - p0
        if sources <= 0 or targets <= 0:
            return
        self._zero_to(p1)
        out, out_rev = self._acc(p0, p1)
        # weights[i] = k[lag] for the lags p0 - q1 + 1 + i, i < sources + targets - 1: row a of
        # the output and column b of the sources (both in increasing position) take
        # weights[a - b + sources - 1].  Sources in reversed order: read the weights backward.
        lo = p0 - q1 + 1 + self.n + 1
        flip = self.rev != out_rev  # whether the result comes out in the other order than `out`
        block, columns = self._block_plan(sources, targets)
        for buffer, padded, _ in self.terms:
            weights = padded[:, lo : lo + sources + targets - 1]
            weights = weights.flip(-1) if self.rev else weights
            rows = self._rows(buffer, q0, q1)
            if columns:
                toeplitz.block_product(weights, rows, out, flip, block, columns)
            else:
                toeplitz.dense_product(weights, rows, out, flip, self.temp)

    def _block_plan(self, sources: int, targets: int) -> tuple[int, int]:
        """``(block, columns)`` of a block-DFT product, or ``(0, 0)``: dense is cheaper or the
        block product's workspace does not fit."""
        if min(sources, targets) < self.tuning.block_min:
            return 0, 0
        block = self.tuning.block or toeplitz.block_size(sources, targets)
        fixed, per_column = toeplitz.block_workspace(sources, targets, self.k, block)
        columns = min(self.numel, self.tuning.columns, (self.temp - fixed) // per_column)
        if columns < min(self.numel, self.tuning.min_columns):
            return 0, 0
        return block, columns
