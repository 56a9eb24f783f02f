"""Bad input raises one clear error naming the value and the valid choices."""

from __future__ import annotations

import pytest
import torch

from fdebench.engine import fdeint

Y0 = torch.ones(2)
T = torch.linspace(0, 1, 11)


def decay(t, y):
    return -y


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"alpha": 0.5, "method": "rk5"}, ValueError,
         r"unknown method 'rk5'; valid methods: abm, euler, gl, l1, rk4"),
        ({"alpha": 0.5, "gradient": "magic"}, ValueError,
         r"unknown gradient 'magic'; valid gradients: adjoint, backsolve, checkpoint, "
         r"continuous, direct, paper, revolve"),
        ({"alpha": 0.5, "history": "fastest"}, ValueError,
         r"unknown history 'fastest'; valid values: auto, fast, soe, stepwise"),
        ({"alpha": 0.5, "history": None}, ValueError,
         r"unknown history None; valid values: auto, fast, soe, stepwise"),
        ({"alpha": 0.0}, ValueError, r"alpha must be a number in \(0, 1\], got 0.0"),
        ({"alpha": 1.5}, ValueError, r"alpha must be a number in \(0, 1\], got 1.5"),
        ({"alpha": -0.2}, ValueError, r"got -0.2"),
        ({"alpha": "0.5"}, ValueError, r"got '0.5'"),
        ({"alpha": 0.5, "method": "rk4"}, ValueError,
         r"method 'rk4' solves classical ODEs only \(alpha == 1\), got alpha=0.5; "
         r"for alpha < 1 use one of: abm, euler, gl, l1"),
        ({"alpha": 0.5, "step_size": 0.0}, ValueError,
         r"step_size must be a positive number, got 0.0"),
        ({"alpha": 0.5, "step_size": float("inf")}, ValueError,
         r"step_size must be a positive number, got inf"),
    ],
    ids=["method", "gradient", "history", "history-none", "alpha0", "alpha1.5", "alpha-neg",
         "alpha-str", "rk4-frac", "step0", "step-inf"],
)
def test_invalid_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        fdeint(decay, Y0, T, **kwargs)


@pytest.mark.parametrize(
    ("t", "pattern"),
    [
        (torch.tensor([0.0, 0.5, 0.4]), r"t must be strictly increasing"),
        (torch.tensor([0.0, 0.5, 0.5]), r"t must be strictly increasing"),
        (torch.tensor([0.0, 0.1, 0.3]), r"t is not uniformly spaced .*pass step_size="),
        (torch.tensor([0.0]), r"single time"),
        (torch.zeros(2, 2), r"1-D tensor"),
        (torch.tensor([0.0, float("nan")]), r"finite"),
    ],
    ids=["decreasing", "repeated", "nonuniform", "single", "2d", "nan"],
)
def test_invalid_times(t, pattern):
    with pytest.raises(ValueError, match=pattern):
        fdeint(decay, Y0, t, alpha=0.5)


def test_nonuniform_times_are_fine_with_a_step_size():
    ys = fdeint(decay, Y0, torch.tensor([0.0, 0.1, 0.3]), alpha=0.5, step_size=0.05)
    assert ys.shape == (3, 2)


@pytest.mark.parametrize(
    ("func", "pattern"),
    [
        (lambda t, y: y.sum(), r"y's shape \(2,\) and dtype torch.float32, got shape \(\)"),
        (lambda t, y: y.double(), r"got shape \(2,\) and dtype torch.float64"),
        (lambda t, y: 1.0, r"got float"),
    ],
    ids=["shape", "dtype", "not-a-tensor"],
)
def test_func_output_is_checked(func, pattern):
    with pytest.raises(ValueError, match=pattern):
        fdeint(func, Y0, T, alpha=0.5)


def test_y0_dtype_is_checked():
    with pytest.raises(TypeError, match=r"float32 or float64 tensor, got torch\.int64"):
        fdeint(decay, torch.ones(2, dtype=torch.long), T, alpha=0.5)
