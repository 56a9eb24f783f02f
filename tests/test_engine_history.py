"""The fast history sums: the same discrete scheme as the stepwise reference, in bounded memory.

Small solves cannot reach the fast algorithm's default block sizes, so most tests shrink them
(``forced``: leaf 2, block-DFT products from 4 rows on with 3-row blocks, and a workspace large
enough for every kind of product) and check that every kind of product ran; the tests at the
default sizes check ``auto`` and the memory bound.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import CUDA_ONLY, TimeMLP

from fdebench.engine import fdeint, history, toeplitz
from fdebench.measure import AllocatorPeak

METHODS = ["euler", "abm", "l1", "gl"]
GRADIENTS = ["direct", "adjoint", "checkpoint"]
CUDA = CUDA_ONLY
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
#: every code path at a small size: step sums, dense and block-DFT products, several blocks
FORCED = history.Tuning(leaf=2, block_min=4, block=3, min_columns=1, fraction=4.0)
#: the same with an 8%-of-a-buffer workspace: bounded blocks of a few rows, far fields
FORCED_BOUNDED = history.Tuning(leaf=2, block_min=4, block=3, min_columns=1, fraction=0.08)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _solve(method, gradient, hist, dtype=torch.float64, device="cpu", n_steps=48, t=None):
    """A solve of the small time-dependent field with a weighted-trajectory loss:
    ``(ys, gradient of the loss with respect to y0 and the parameters)``."""
    field = TimeMLP(dim=4, hidden=6, dtype=dtype).to(device)
    gen = torch.Generator().manual_seed(2)
    y0 = torch.randn(3, 4, dtype=dtype, generator=gen).to(device).requires_grad_()
    t_end = 1.5
    if t is None:  # several output times on the grid
        t = torch.tensor([0.0, 0.25, 0.5, 1.0, 1.5], dtype=dtype)
    ys = fdeint(field, y0, t.to(device), alpha=0.6, method=method, gradient=gradient,
                step_size=t_end / n_steps, history=hist)
    weights = torch.linspace(-1, 1, ys.numel(), dtype=dtype, device=device).view_as(ys)
    loss = (weights * ys).sum() + 0.5 * ys.square().sum()
    grads = torch.autograd.grad(loss, [y0, *field.parameters()])
    return ys.detach().cpu(), torch.cat([g.reshape(-1) for g in grads]).cpu()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("method", "gradient"), list(itertools.product(METHODS, GRADIENTS)))
@pytest.mark.parametrize("tuning", [FORCED, FORCED_BOUNDED], ids=["forced", "bounded"])
def test_fast_equals_stepwise(monkeypatch, products, tuning, method, gradient, dtype, device):
    """Solution and gradients of ``fast`` equal ``stepwise`` to rounding, every method x mode."""
    monkeypatch.setattr(history, "TUNING", tuning)
    ys_ref, grad_ref = _solve(method, gradient, "stepwise", dtype, device)
    ys, grad = _solve(method, gradient, "fast", dtype, device)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    assert _rel(ys, ys_ref) < tol
    assert _rel(grad, grad_ref) < tol
    assert products["dense"] > 0
    assert products["block"] > 0 or tuning is FORCED_BOUNDED


@pytest.mark.parametrize(("method", "gradient"), list(itertools.product(METHODS, GRADIENTS)))
def test_fast_off_grid_output_times(monkeypatch, products, method, gradient):
    """Output times between grid points (linear interpolation) go through the same sums."""
    monkeypatch.setattr(history, "TUNING", FORCED)
    t = torch.tensor([0.0, 0.1, 0.37, 0.9, 1.234, 1.49], dtype=torch.float64)
    ys_ref, grad_ref = _solve(method, gradient, "stepwise", t=t)
    ys, grad = _solve(method, gradient, "fast", t=t)
    assert _rel(ys, ys_ref) < 1e-10
    assert _rel(grad, grad_ref) < 1e-10
    assert products["block"] > 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("gradient", ["adjoint", "checkpoint"])
def test_fast_adjoint_equals_direct(monkeypatch, method, gradient):
    """The exact adjoint (and checkpointing) still give direct's gradients with fast sums."""
    monkeypatch.setattr(history, "TUNING", FORCED_BOUNDED)
    _, direct = _solve(method, "direct", "fast")
    _, other = _solve(method, gradient, "fast")
    assert _rel(other, direct) < 1e-10


# ---- the history objects and the Toeplitz products on their own ---------------------------
def _explicit_toeplitz(weights: torch.Tensor, sources: int, targets: int) -> torch.Tensor:
    """``T[k, a, b] = weights[k, a - b + sources - 1]`` entry by entry."""
    t = torch.empty(weights.shape[0], targets, sources, dtype=weights.dtype)
    for a in range(targets):
        for b in range(sources):
            t[:, a, b] = weights[:, a - b + sources - 1]
    return t


@pytest.mark.parametrize(("sources", "targets", "k", "flip"),
                         [(7, 5, 1, False), (5, 9, 2, True), (20, 20, 1, True), (33, 17, 2, False)])
@pytest.mark.parametrize("kind", ["dense", "block"])
def test_toeplitz_products(sources, targets, k, flip, kind):
    gen = torch.Generator().manual_seed(sources * targets)
    weights = torch.randn(k, sources + targets - 1, dtype=torch.float64, generator=gen)
    rows = torch.randn(sources, 10, dtype=torch.float64, generator=gen)
    out = torch.randn(k, targets, 10, dtype=torch.float64, generator=gen)
    expected = _explicit_toeplitz(weights, sources, targets) @ rows
    expected = out + (expected.flip(1) if flip else expected)
    if kind == "dense":
        toeplitz.dense_product(weights, rows, out, flip, workspace=2 * k * targets * 3)
    else:
        toeplitz.block_product(weights, rows, out, flip, block=4, columns=3)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def _history_case(anticausal: bool, order: str, k: int, n: int = 70, numel: int = 5,
                  seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(n + 1, numel, dtype=torch.float64, generator=gen)
    kernel = torch.rand(k, n + 1, dtype=torch.float64, generator=gen)
    kernel = kernel[0] if k == 1 else kernel
    if anticausal:
        targets = range(n - 1, -1, -1)
    else:
        targets = range(1, n + 1) if order == "increasing" else range(n, 0, -1)
    return values, kernel, targets


def _direct_sum(values, kernel, m, anticausal):
    """The history sum of target ``m`` term by term."""
    k = kernel.reshape(-1, kernel.shape[-1])
    n = values.shape[0] - 1
    rows = range(m + 1, n + 1) if anticausal else range(m)
    total = torch.zeros(k.shape[0], values.shape[1], dtype=values.dtype)
    for i in rows:
        total += k[:, abs(m - i), None] * values[i]
    return total[0] if kernel.dim() == 1 else total


@pytest.mark.parametrize("scratch", [False, True])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize(("anticausal", "order"),
                         [(False, "increasing"), (True, "decreasing"), (False, "decreasing")],
                         ids=["past", "future", "past-offline"])
def test_fast_history_sums(anticausal, order, k, scratch):
    """Every target of every mode equals its sum written out; the buffer's sources are intact
    when requested although scratch rows are overwritten (as the schemes do: the target's row is
    written after its sum)."""
    values, kernel, targets = _history_case(anticausal, order, k)
    buffer = values.clone()
    fast = history.Fast([(buffer, kernel)], targets, anticausal=anticausal, scratch=scratch,
                        share=1.0, tuning=FORCED_BOUNDED)
    for m in targets:
        torch.testing.assert_close(fast(m), _direct_sum(values, kernel, m, anticausal),
                                   rtol=1e-12, atol=1e-12)
        buffer[m] = values[m]


def test_fast_history_two_terms():
    """``future`` over two buffers with their own kernels (the ABM adjoint)."""
    a, ka, targets = _history_case(True, "decreasing", 1, seed=1)
    b, kb, _ = _history_case(True, "decreasing", 1, seed=2)
    fast = history.future("fast", [(a, ka), (b, kb)], targets)
    for m in targets:
        expected = _direct_sum(a, ka, m, True) + _direct_sum(b, kb, m, True)
        torch.testing.assert_close(fast(m), expected, rtol=1e-12, atol=1e-12)


def test_fast_history_rejects_targets_out_of_order():
    values, kernel, targets = _history_case(False, "increasing", 1)
    fast = history.past("fast", values, kernel, targets)
    fast(1)
    with pytest.raises(RuntimeError, match="target position 3 requested, 2 due"):
        fast(3)


# ---- auto and memory at the default sizes --------------------------------------------------
def test_auto_picks_fast_for_long_solves():
    state = 128 * 64 * 4  # bytes of a float32 128 x 64 state
    assert history.choose("auto", 1000, state) == "fast"
    assert history.choose("auto", 40, state) == "stepwise"  # short: stepwise is cheaper
    assert history.choose("auto", 4000, 16) == "stepwise"  # tiny state: the buffer is in cache
    assert history.choose("stepwise", 4000, state) == "stepwise"
    assert history.choose("fast", 10, 16) == "fast"


@pytest.mark.parametrize(("n_steps", "used"), [(512, True), (40, False)])
def test_auto_runs_fast_in_fdeint(monkeypatch, n_steps, used):
    made = []

    class Spy(history.Fast):
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(history, "Fast", Spy)
    y0 = torch.randn(64, 32)  # the buffer: 4 MiB at N = 512, 0.3 MiB at N = 40
    fdeint(lambda t, y: -y, y0, torch.tensor([0.0, 1.0]), alpha=0.5, step_size=1 / n_steps)
    assert bool(made) is used


def test_fast_default_sizes_match_stepwise():
    """At the default sizes (``auto`` picks ``fast``), against stepwise, float64."""
    n_steps = 300
    gen = torch.Generator().manual_seed(0)
    weight = (torch.randn(64, 64, dtype=torch.float64, generator=gen) / 8).requires_grad_()
    y0 = torch.randn(64, 64, dtype=torch.float64, generator=gen)
    assert history.choose("auto", n_steps, y0.numel() * y0.element_size()) == "fast"
    results = []
    for hist in ("stepwise", "auto"):
        ys = fdeint(lambda t, y: torch.tanh(y @ weight), y0, torch.tensor([0.0, 0.5, 1.0]),
                    alpha=0.5, step_size=1 / n_steps, history=hist, params=[weight])
        (grad,) = torch.autograd.grad(ys.square().sum(), [weight])
        results.append((ys.detach(), grad))
    assert _rel(results[1][0], results[0][0]) < 1e-10
    assert _rel(results[1][1], results[0][1]) < 1e-10


@pytest.mark.parametrize("gradient", GRADIENTS)
@pytest.mark.parametrize("method", ["euler", "abm"])
def test_fast_memory_bound(products, method, gradient):
    """Allocator peak of ``fast`` <= ``stepwise`` + 10% of one ``(N + 1) x |y|`` buffer (N large
    enough for block-DFT products at the default sizes)."""
    n_steps, state = 1024, (32, 32)
    weight = torch.randn(32, 32) / 6

    def peak(hist: str) -> int:
        y0 = torch.randn(*state, generator=torch.Generator().manual_seed(1)).requires_grad_()
        with AllocatorPeak(torch.device("cpu")) as memory:
            ys = fdeint(lambda t, y: y @ weight, y0, torch.tensor([0.0, 1.0]), alpha=0.5,
                        method=method, gradient=gradient, step_size=1 / n_steps, history=hist)
            ys[-1].sum().backward()
        return memory.peak_bytes

    buffer = (n_steps + 1) * 32 * 32 * 4
    stepwise, fast = peak("stepwise"), peak("fast")
    assert fast <= stepwise + 0.10 * buffer, (fast - stepwise) / buffer
    assert products["block"] + products["dense"] > 0


@pytest.mark.parametrize("gradient", ["continuous", "paper"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("tuning", [FORCED, FORCED_BOUNDED], ids=["forced", "bounded"])
def test_fast_history_in_the_approximate_adjoints(monkeypatch, products, tuning, method,
                                                   gradient):
    """The continuous adjoint's Volterra sums and the published adjoint's backward scheme take
    the fast history too, and give the stepwise gradient to rounding."""
    monkeypatch.setattr(history, "TUNING", tuning)
    ys_ref, grad_ref = _solve(method, gradient, "stepwise")
    before = dict(products)
    ys, grad = _solve(method, gradient, "fast")
    assert _rel(ys, ys_ref) < 1e-10 and _rel(grad, grad_ref) < 1e-10
    assert products["dense"] + products["block"] > before["dense"] + before["block"]


@pytest.mark.parametrize("gradient", ["continuous", "paper"])
def test_approximate_adjoint_sums_go_through_the_fast_history(monkeypatch, gradient):
    """The backward pass asks for fast sums when the solve runs fast: ``continuous`` the
    scheme's future sums over its trajectory slots (targets N .. 1), ``paper`` the past sums of
    its backward scheme (a second causal sum besides the forward solve's)."""
    monkeypatch.setattr(history, "TUNING", FORCED)
    made = []

    class Spy(history.Fast):
        def __init__(self, terms, targets, **kwargs):
            made.append((kwargs["anticausal"], list(targets)))
            super().__init__(terms, targets, **kwargs)

    monkeypatch.setattr(history, "Fast", Spy)
    _solve("l1", gradient, "fast", n_steps=48)
    if gradient == "continuous":
        assert (True, list(range(48, 0, -1))) in made
    else:
        assert sum(not anticausal for anticausal, _ in made) == 2, made
