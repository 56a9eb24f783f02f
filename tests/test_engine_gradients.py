"""Every gradient mode against direct autograd, the textbook reference and finite differences."""

from __future__ import annotations

import pytest
import torch
from conftest import TimeMLP
from reference import reference_solve

from fdebench.engine import fdeint

CASES = [(m, a) for a in [0.3, 0.5, 0.8, 1.0] for m in ["euler", "abm", "l1", "gl"]]
CASES += [("rk4", 1.0)]
IDS = [f"{m}-alpha{a}" for m, a in CASES]
N_STEPS, H = 12, 0.1


def _loss(kind, ys):
    if kind == "final":
        return ys[-1].square().sum()
    weights = torch.linspace(-1, 1, ys.numel(), dtype=ys.dtype).view_as(ys)
    return (weights * ys).sum() + 0.5 * ys.square().sum()


def _grads(method, alpha, gradient, loss, solver=None):
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y0.requires_grad_(True)
    if solver is None:
        t = torch.linspace(0, N_STEPS * H, N_STEPS + 1, dtype=torch.float64)
        ys = fdeint(field, y0, t, alpha=alpha, method=method, gradient=gradient)
    else:
        ys = solver(field, y0, alpha, H, N_STEPS, method)
    grads = torch.autograd.grad(_loss(loss, ys), [y0, *field.parameters()])
    return torch.cat([g.reshape(-1) for g in grads])


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("loss", ["final", "trajectory"])
@pytest.mark.parametrize(("method", "alpha"), CASES, ids=IDS)
def test_direct_matches_textbook_autograd(method, alpha, loss):
    direct = _grads(method, alpha, "direct", loss)
    reference = _grads(method, alpha, None, loss, solver=reference_solve)
    assert _rel(direct, reference) < 1e-11


@pytest.mark.parametrize("gradient", ["adjoint", "checkpoint"])
@pytest.mark.parametrize("loss", ["final", "trajectory"])
@pytest.mark.parametrize(("method", "alpha"), CASES, ids=IDS)
def test_mode_matches_direct(method, alpha, loss, gradient):
    direct = _grads(method, alpha, "direct", loss)
    other = _grads(method, alpha, gradient, loss)
    assert _rel(other, direct) < 1e-9


@pytest.mark.parametrize(("method", "alpha"), [("euler", 0.5), ("abm", 0.7), ("gl", 0.3),
                                               ("l1", 0.9), ("rk4", 1.0)])
def test_direct_matches_finite_differences(method, alpha):
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t = torch.linspace(0, 1.2, 13, dtype=torch.float64)

    def loss():
        return _loss("trajectory", fdeint(field, y0, t, alpha=alpha, method=method))

    y0.requires_grad_(True)
    analytic = torch.autograd.grad(loss(), [y0, field.w1])
    eps = 1e-6
    with torch.no_grad():
        for tensor, grad in zip([y0, field.w1], analytic, strict=True):
            for idx in [(0, 0), (1, 2), (0, 1)]:
                old = tensor[idx].item()
                tensor[idx] = old + eps
                up = loss().item()
                tensor[idx] = old - eps
                down = loss().item()
                tensor[idx] = old
                fd = (up - down) / (2 * eps)
                assert abs(fd - grad[idx].item()) <= 1e-7 * max(1.0, abs(fd))


@pytest.mark.parametrize("gradient", ["direct", "adjoint", "checkpoint"])
@pytest.mark.parametrize("method", ["abm", "gl"])
def test_gradcheck(method, gradient):
    g = torch.Generator().manual_seed(4)
    weight = torch.randn(3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y0 = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.tensor([0.0, 0.2, 0.5], dtype=torch.float64)

    def solve(y0, weight):
        return fdeint(lambda t, y: torch.tanh(weight @ y) + t, y0, t, alpha=0.6,
                      method=method, step_size=0.1, gradient=gradient, params=[weight])

    assert torch.autograd.gradcheck(solve, (y0, weight))


@pytest.mark.parametrize("gradient", ["direct", "adjoint", "checkpoint"])
def test_gradients_reach_y0_and_params_from_any_output_time(gradient):
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.3, 0.5, 1.0], dtype=torch.float64)
    ys = fdeint(field, y0, t, alpha=0.5, step_size=0.05, gradient=gradient)
    ys[1].sum().backward()  # a loss on an intermediate time only
    assert y0.grad is not None and y0.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in field.parameters())


@pytest.mark.parametrize("gradient", ["direct", "adjoint", "checkpoint"])
def test_backward_twice_with_retain_graph(gradient):
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    ys = fdeint(field, y0, t, alpha=0.5, method="abm", gradient=gradient)
    first = torch.autograd.grad(ys[-1].sum(), [y0, field.w1], retain_graph=True)
    second = torch.autograd.grad(ys[-1].sum(), [y0, field.w1])
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_backward_after_an_in_place_update_is_refused():
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    ys = fdeint(field, y0, torch.linspace(0, 1, 5, dtype=torch.float64), alpha=0.5)
    ys[-1].sum().backward(retain_graph=True)
    with torch.no_grad():
        field.w1.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ys[-1].sum().backward()


def test_no_grad_solve_keeps_no_graph():
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64)
    with torch.no_grad():
        ys = fdeint(field, y0, torch.linspace(0, 1, 5, dtype=torch.float64), alpha=0.5)
    assert not ys.requires_grad


# ---- checkpoint and random generators ---------------------------------------------------------
def _seeded_grads(gradient: str, field, params, n: int = 40, seed: int = 0):
    torch.manual_seed(seed)
    y0 = torch.ones(3, dtype=torch.float64)
    ys = fdeint(field, y0, torch.linspace(0, 1, 5, dtype=torch.float64), alpha=0.7,
                step_size=1 / n, gradient=gradient, params=params)
    return torch.autograd.grad(ys.square().sum(), params)


@pytest.mark.parametrize("late", [False, True], ids=["random-from-the-start", "random-later"])
def test_checkpoint_of_a_random_field_recomputes_the_same_numbers(late):
    # a field that draws random numbers (dropout; from t = 0.5 on only, if late): checkpoint
    # must replay each step with the random numbers its forward step drew, to equal direct
    w = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)

    def field(t, y):
        z = torch.tanh(y @ w)
        return torch.nn.functional.dropout(z, 0.5) if (not late or t > 0.5) else z

    direct = _seeded_grads("direct", field, [w])
    torch.testing.assert_close(_seeded_grads("checkpoint", field, [w]), direct, rtol=0, atol=0)
    other_seed = _seeded_grads("direct", field, [w], seed=1)
    assert not torch.equal(other_seed[0], direct[0])  # the field is random indeed


def test_checkpoint_keeps_no_generator_state_per_step_of_a_deterministic_field():
    from fdebench.measure import AllocatorPeak

    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    params = list(net.parameters())

    def peak(gradient: str, n: int) -> int:
        with AllocatorPeak(torch.device("cpu")) as window:
            ys = fdeint(lambda t, y: net(y), torch.ones(2), torch.linspace(0, 1, 5),
                        alpha=0.8, step_size=1 / n, gradient=gradient, params=params)
            ys.square().sum().backward()
        return window.peak_bytes

    # per extra step, checkpoint keeps the step's inputs (a few floats), not the CPU
    # generator's 5 KB state as torch.utils.checkpoint does by default: less than direct
    per_step = {g: (peak(g, 400) - peak(g, 40)) / 360 for g in ("direct", "checkpoint")}
    assert per_step["checkpoint"] < min(per_step["direct"], 1000), per_step
