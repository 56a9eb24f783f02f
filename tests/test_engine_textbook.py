"""The textbook engine (``textbook_fdeint``, ``engine: textbook``): fdebench's schemes written as
research code writes them.  Its solution and gradient equal ``fdeint``'s ``direct`` to rounding;
what it refuses; an FDEBlock trains on it."""

from __future__ import annotations

import pytest
import torch
from conftest import TimeMLP
from task_setup import make

from fdebench.engine import TEXTBOOK_METHODS, fdeint, textbook_fdeint
from fdebench.tasks import ENGINES, incompatible
from fdebench.tasks.freefall import FreeFall

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = ["euler", "abm", "l1", "gl"]
#: on the grid of step 0.05; off it at step 0.04 (every time but 0 is interpolated, the last
#: one past the grid's previous time)
TIMES = {
    "grid": ([0.0, 0.25, 0.5, 0.75, 1.0], None),
    "off-grid": ([0.0, 0.33, 0.5, 0.61, 1.013], 0.04),
}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def solve_and_grad(solver, method: str, alpha: float, times: list[float], step: float | None):
    """``ys`` and the gradients w.r.t. ``y0`` and the field's parameters of a nonlinear loss."""
    field = TimeMLP(dim=3, hidden=5)
    y0 = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y0.requires_grad_()
    t = torch.tensor(times, dtype=torch.float64)
    step = 0.05 if step is None else step
    ys = solver(field, y0, t, alpha=alpha, method=method, step_size=step)
    grads = torch.autograd.grad((ys * torch.cos(ys)).sum(), [y0, *field.parameters()])
    return ys.detach(), grads


def fdebench_direct(func, y0, t, **kw):
    return fdeint(func, y0, t, gradient="direct", **kw)


@pytest.mark.parametrize("times", list(TIMES), ids=list(TIMES))
@pytest.mark.parametrize("alpha", [0.3, 0.7, 1.0])
@pytest.mark.parametrize("method", METHODS)
def test_textbook_equals_fdebench_direct(method, alpha, times):
    """float64: the outputs (interpolated ones too) and every gradient to 1e-12, relative."""
    theirs_ys, theirs_grads = solve_and_grad(textbook_fdeint, method, alpha, *TIMES[times])
    ours_ys, ours_grads = solve_and_grad(fdebench_direct, method, alpha, *TIMES[times])
    assert theirs_ys.shape == ours_ys.shape == (5, 4, 3)
    assert relative(theirs_ys, ours_ys) < 1e-12
    for theirs, ours in zip(theirs_grads, ours_grads, strict=True):
        assert relative(theirs, ours) < 1e-12


def test_textbook_history_is_autograd_through_stack():
    """The history sums are the textbook ones: ``torch.stack`` of weighted terms in the graph."""
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64)
    ys = textbook_fdeint(field, y0, torch.linspace(0, 1, 6, dtype=torch.float64), alpha=0.5)
    names, seen, stack = set(), set(), [ys.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    assert "StackBackward0" in names and "SumBackward1" in names


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": "rk4"}, ValueError, "unknown method 'rk4'; valid methods: abm, euler, gl, l1"),
        ({"alpha": 1.5}, ValueError, r"alpha must be a number in \(0, 1\], got 1.5"),
        ({"alpha": torch.tensor(0.5, requires_grad=True)}, ValueError,
         "no learnable order"),
        ({"y0": torch.ones(3, dtype=torch.int64)}, TypeError, "float32 or float64"),
    ],
    ids=["method", "alpha", "learnable", "dtype"],
)
def test_textbook_input_errors(kwargs, error, message):
    args = {"y0": torch.ones(3, dtype=torch.float64), "alpha": 0.5, "method": "euler", **kwargs}
    y0 = args.pop("y0")
    with pytest.raises(error, match=message):
        textbook_fdeint(lambda t, y: -y, y0, torch.linspace(0, 1, 3, dtype=torch.float64),
                        **args)


def test_textbook_alpha_tensor_without_grad_is_the_float():
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    y0 = torch.ones(2, dtype=torch.float64)
    a = textbook_fdeint(lambda s, y: -y, y0, t, alpha=torch.tensor(0.6, dtype=torch.float64),
                        method="abm")
    b = textbook_fdeint(lambda s, y: -y, y0, t, alpha=0.6, method="abm")
    assert torch.equal(a, b)


# ---- the engine ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "gradient", "alpha", "learn_alpha", "keys", "reason"),
    [
        ("euler", "adjoint", 0.5, False, ("gradient", "engine"),
         "engine 'textbook' has no gradient 'adjoint'; its gradients: direct (for 'adjoint' use "
         "engine 'fdebench')"),
        ("abm", "checkpoint", 1.0, False, ("gradient", "engine"), "use engine 'fdebench'"),
        ("rk4", "direct", 1.0, False, ("method", "engine"),
         "method 'rk4' is not a method of engine 'textbook'; its methods: abm, euler, gl, l1"),
        ("l1", "direct", 0.5, True, ("engine", "learn_alpha"),
         "engine 'textbook' has no learnable order"),
    ],
    ids=["adjoint", "checkpoint", "rk4", "learn-alpha"],
)
def test_what_the_textbook_engine_refuses(method, gradient, alpha, learn_alpha, keys, reason):
    problem = incompatible({"engine": "textbook", "method": method, "gradient": gradient,
                            "alpha": alpha, "learn_alpha": learn_alpha})
    assert problem is not None and problem.keys == keys
    assert reason in problem.reason


@pytest.mark.parametrize("alpha", [0.3, 1.0])
@pytest.mark.parametrize("method", METHODS)
def test_what_the_textbook_engine_runs(method, alpha):
    assert incompatible({"engine": "textbook", "method": method, "gradient": "direct",
                         "alpha": alpha}) is None
    assert ENGINES["textbook"].reference_method(method) == method
    assert set(ENGINES["textbook"].methods) == set(TEXTBOOK_METHODS)


@pytest.mark.parametrize(("method", "alpha"), [("abm", 0.6), ("gl", 1.0)])
def test_an_fdeblock_trains_on_the_textbook_engine(method, alpha):
    """A training step of the freefall task: the same loss, field evaluations and (float32)
    gradients as on the fdebench engine; the float64 gradient probe equal to 1e-12."""
    tasks = {engine: make(FreeFall, engine=engine, method=method, alpha=alpha, step_size=0.25,
                          gradient="direct", hidden=8)
             for engine in ("textbook", "fdebench")}
    probes = {engine: task.gradient_probe("direct") for engine, task in tasks.items()}
    assert probes["textbook"].dtype == torch.float64
    assert relative(probes["textbook"], probes["fdebench"]) < 1e-12
    steps, grads = {}, {}
    for engine, task in tasks.items():
        before = [p.detach().clone() for p in task.model.parameters()]
        steps[engine] = task.train_step()
        grads[engine] = torch.cat([p.grad.reshape(-1) for p in task.model.parameters()])
        assert any(not torch.equal(a, p) for a, p in zip(before, task.model.parameters(),
                                                          strict=True))
    assert steps["textbook"].loss == pytest.approx(steps["fdebench"].loss, rel=1e-5)
    assert steps["textbook"].nfe_forward == steps["fdebench"].nfe_forward
    assert steps["textbook"].nfe_backward == steps["fdebench"].nfe_backward == 0
    assert relative(grads["textbook"], grads["fdebench"]) < 1e-4
