"""No silent gradient loss: a field that uses a tensor the solve does not differentiate is an
error in every gradient mode, unless ``params=()`` says so on purpose."""

from __future__ import annotations

import pytest
import torch

from fdebench.engine import fdeint

#: (gradient, alpha, extra fdeint keywords): every mode, each where it runs
MODES = [("direct", 0.6, {}), ("adjoint", 0.6, {}), ("checkpoint", 0.6, {}),
         ("continuous", 0.6, {}), ("paper", 0.6, {}), ("backsolve", 1.0, {}),
         ("revolve", 0.6, {"history": "soe"}), ("direct", 0.6, {"history": "soe"})]
IDS = [f"{g}-{kw.get('history', 'auto')}" for g, _, kw in MODES]
T = torch.linspace(0, 1, 9, dtype=torch.float64)


def solve(func, gradient, alpha, extra, **kwargs):
    y0 = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)
    return fdeint(func, y0, T, alpha=alpha, gradient=gradient, **extra, **kwargs), y0


@pytest.mark.parametrize(("gradient", "alpha", "extra"), MODES, ids=IDS)
def test_a_closure_over_a_module_is_refused(gradient, alpha, extra):
    lin = torch.nn.Linear(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"func uses 2 tensor\(s\) that require grad but would "
                                         r"get no gradient \(shapes \(3, 3\), \(3,\)\): pass them "
                                         r"in params="):
        solve(lambda t, y: torch.tanh(lin(y)), gradient, alpha, extra)


@pytest.mark.parametrize(("gradient", "alpha", "extra"), MODES, ids=IDS)
def test_a_closure_over_a_bare_tensor_is_refused_and_listing_it_differentiates_it(
        gradient, alpha, extra):
    rate = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"shapes \(3,\)\)"):
        solve(lambda t, y: -rate * y, gradient, alpha, extra)
    ys, _ = solve(lambda t, y: -rate * y, gradient, alpha, extra, params=[rate])
    (grad,) = torch.autograd.grad(ys[-1].sum(), rate)
    reference, _ = solve(lambda t, y: -rate * y, "direct", alpha, {}, params=[rate])
    (expected,) = torch.autograd.grad(reference[-1].sum(), rate)
    assert grad.abs().min() > 0
    if gradient in ("direct", "adjoint", "checkpoint") and not extra:  # exact: direct's
        torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
    else:  # the approximate modes' errors are pinned in their own tests; here: it arrives
        assert torch.nn.functional.cosine_similarity(grad, expected, dim=0) > 0.95


@pytest.mark.parametrize(("gradient", "alpha", "extra"), MODES, ids=IDS)
def test_a_listed_non_leaf_tensor_carries_the_gradient_to_its_leaves(gradient, alpha, extra):
    """Attention-style: weights computed outside the solve, passed in params; the walk stops
    there and the gradient flows on to the leaf they came from."""
    lin = torch.nn.Linear(3, 3, dtype=torch.float64)
    weight = torch.softmax(lin.weight, dim=1)  # non-leaf, computed once
    ys, y0 = solve(lambda t, y: weight @ y - y, gradient, alpha, extra, params=[weight])
    ys[-1].square().sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert lin.bias.grad is None and y0.grad is not None


def test_an_unlisted_non_leaf_tensor_is_traced_to_its_leaves():
    lin = torch.nn.Linear(3, 3, dtype=torch.float64)
    weight = torch.softmax(lin.weight, dim=1)
    with pytest.raises(ValueError, match=r"1 tensor\(s\).*shapes \(3, 3\)\)"):
        solve(lambda t, y: weight @ y - y, "adjoint", 0.6, {})


@pytest.mark.parametrize("gradient", ["direct", "adjoint", "checkpoint"])
def test_a_module_field_and_params_none_on_purpose(gradient):
    field = torch.nn.Sequential(torch.nn.Linear(3, 3, dtype=torch.float64), torch.nn.Tanh())
    ys, _ = solve(lambda t, y: field(y), gradient, 0.6, {}, params=field.parameters())
    ys[-1].sum().backward()
    assert all(p.grad is not None for p in field.parameters())

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3, dtype=torch.float64)

        def forward(self, t, y):
            return torch.tanh(self.lin(y))

    module = Field()
    ys, _ = solve(module, gradient, 0.6, {})  # params default to its parameters
    ys[-1].sum().backward()
    assert module.lin.weight.grad is not None
    lin = torch.nn.Linear(3, 3, dtype=torch.float64)
    ys, y0 = solve(lambda t, y: torch.tanh(lin(y)), gradient, 0.6, {}, params=())
    ys[-1].sum().backward()  # none, on purpose: only y0 gets a gradient
    assert y0.grad is not None and lin.weight.grad is None


def test_no_check_without_autograd_and_the_first_evaluation_counted_once():
    lin = torch.nn.Linear(3, 3, dtype=torch.float64)
    calls = []

    def field(t, y):
        calls.append(torch.is_grad_enabled())
        return torch.tanh(lin(y))

    with torch.no_grad():
        solve(field, "adjoint", 0.6, {})  # nothing is differentiated: nothing to check
    assert len(calls) == 8 and not any(calls)
    calls.clear()
    solve(field, "adjoint", 0.6, {}, params=lin.parameters())
    # the check costs no extra evaluation: the first one runs with autograd on, the others
    # as the mode runs them (the adjoint's forward pass keeps no graph)
    assert len(calls) == 8 and calls[0] and not any(calls[1:])
