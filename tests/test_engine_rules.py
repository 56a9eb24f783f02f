"""The engine's one set of rules (``refusal``): every refusal with its keys and reason, what it
lets through, and that ``fdeint`` raises exactly its reason."""

from __future__ import annotations

import itertools

import pytest
import torch

from fdebench.engine import GRADIENTS, HISTORIES, METHODS, Method, Refusal, fdeint, refusal
from fdebench.engine.schemes import Compressed, Scheme

# (method, gradient, alpha, history, learnable) -> (keys, the reason's start)
REFUSALS = {
    "alpha-zero": (("euler", "direct", 0.0, "auto", False), ("alpha",),
                   "alpha must be a number in (0, 1], got 0.0"),
    "alpha-big": (("euler", "direct", 1.5, "auto", False), ("alpha",),
                  "alpha must be a number in (0, 1], got 1.5"),
    "alpha-str": (("euler", "direct", "0.5", "auto", False), ("alpha",),
                  "alpha must be a number in (0, 1], got '0.5'"),
    "alpha-bool": (("euler", "direct", True, "auto", False), ("alpha",),
                   "alpha must be a number in (0, 1], got True"),
    "method": (("rk5", "direct", 0.5, "auto", False), ("method",),
               "unknown method 'rk5'; valid methods: abm, euler, gl, l1, rk4"),
    "gradient": (("euler", "magic", 0.5, "auto", False), ("gradient",),
                 "unknown gradient 'magic'; valid gradients: adjoint, backsolve, checkpoint, "
                 "continuous, direct, paper, revolve"),
    "history": (("euler", "direct", 0.5, "fastest", False), ("history",),
                "unknown history 'fastest'; valid values: auto, fast, soe, stepwise"),
    "history-none": (("euler", "direct", 0.5, None, False), ("history",),
                     "unknown history None; valid values: auto, fast, soe, stepwise"),
    "rk4-fractional": (("rk4", "direct", 0.5, "auto", False), ("method", "alpha"),
                       "method 'rk4' solves classical ODEs only (alpha == 1), got alpha=0.5; "
                       "for alpha < 1 use one of: abm, euler, gl, l1"),
    "backsolve-fractional": (("euler", "backsolve", 0.5, "auto", False),
                             ("gradient", "method", "alpha"),
                             "gradient 'backsolve' needs alpha == 1, got alpha=0.5"),
    "soe-gl": (("gl", "direct", 0.5, "soe", False), ("history", "method", "alpha"),
               "history 'soe' has no compressed form of method 'gl' (its weights are not the "
               "integrals of a kernel); with history 'soe' use one of: abm, euler, l1"),
    "adjoint-soe": (("euler", "adjoint", 0.5, "soe", False), ("gradient", "history", "alpha"),
                    "gradient 'adjoint' rebuilds each step from a (N + 1) |y| history buffer"),
    "continuous-soe": (("abm", "continuous", 0.5, "soe", False), ("gradient", "history", "alpha"),
                       "gradient 'continuous' approximates the continuous adjoint"),
    "revolve-auto": (("euler", "revolve", 0.5, "auto", False), ("gradient", "history", "alpha"),
                     "gradient 'revolve' needs history 'soe'"),
    "learnable-soe": (("euler", "direct", 0.5, "soe", True), ("history", "learnable"),
                      "history 'soe' is not differentiable in alpha (its sum of exponentials "
                      "is fitted per order); for a learnable alpha use history auto, fast or "
                      "stepwise, or pass alpha as a float"),
    "learnable-rk4": (("rk4", "direct", 1.0, "auto", True), ("method", "learnable"),
                      "method 'rk4' has no order to learn (it solves classical ODEs only); for "
                      "a learnable alpha use one of: abm, euler, gl, l1"),
    "learnable-paper": (("euler", "paper", 0.5, "auto", True), ("gradient", "learnable"),
                        "gradient 'paper' gives no derivative with respect to alpha"),
    "learnable-revolve-one": (("euler", "revolve", 1.0, "auto", True), ("gradient", "learnable"),
                              "gradient 'revolve' gives no derivative with respect to alpha"),
}


@pytest.mark.parametrize(("args", "keys", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_every_refusal_names_its_keys_and_the_valid_choices(args, keys, reason):
    problem = refusal(*args)
    assert isinstance(problem, Refusal)
    assert problem.keys == keys
    assert problem.reason.startswith(reason), problem.reason
    assert "\n" not in problem.reason


def test_a_mode_refusal_lists_the_modes_that_work():
    # the modes that run with the other arguments as given: revolve needs history soe
    assert refusal("euler", "backsolve", 0.5).reason.endswith(
        "; for method 'euler' at alpha=0.5 use one of: adjoint, checkpoint, continuous, direct, "
        "paper")
    assert refusal("euler", "backsolve", 0.5, "soe").reason.endswith(
        "; for method 'euler' at alpha=0.5 use one of: checkpoint, direct, revolve")
    assert refusal("rk4", "revolve", 1.0, "soe") is None
    assert refusal("euler", "revolve", 0.5, "stepwise").reason.endswith(
        "; with history 'stepwise' for method 'euler' at alpha=0.5 use one of: adjoint, "
        "checkpoint, continuous, direct, paper")
    assert refusal("euler", "adjoint", 0.5, "soe").reason.endswith(
        "; with history 'soe' for method 'euler' at alpha=0.5 use one of: checkpoint, direct, "
        "revolve")
    assert refusal("euler", "continuous", 0.5, learnable=True).reason.endswith(
        "; for a learnable alpha (a tensor that requires grad) use one of: adjoint, checkpoint, "
        "direct, or pass alpha as a float")


@pytest.mark.parametrize("args", [
    ("euler", "direct", 0.5), ("rk4", "backsolve", 1.0), ("rk4", "revolve", 1),
    ("gl", "adjoint", 0.3, "fast"), ("l1", "revolve", 0.5, "soe"), ("gl", "direct", 1.0, "soe"),
    ("abm", "paper", 1.0, "soe"), ("abm", "checkpoint", 1.0, "stepwise", True),
    ("euler", "adjoint", 0.7, "auto", True),
], ids=str)
def test_what_runs(args):
    assert refusal(*args) is None


def test_at_alpha_one_every_history_runs_the_classical_scheme():
    """No history below 1 means nothing for a history to refuse."""
    for method, gradient, history in itertools.product(METHODS, GRADIENTS, HISTORIES):
        assert refusal(method, gradient, 1.0, history) is None


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_fdeint_raises_the_reason(name):
    (method, gradient, alpha, history, learnable), _, _ = REFUSALS[name]
    expected = refusal(method, gradient, alpha, history, learnable).reason
    if learnable:  # a learnable order is a tensor that requires grad
        alpha = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError) as info:
        fdeint(lambda t, y: -y, torch.ones(2, dtype=torch.float64),
               torch.linspace(0, 1, 5, dtype=torch.float64), alpha=alpha, method=method,
               gradient=gradient, history=history)
    assert str(info.value) == expected


def test_methods_are_named_records():
    assert all(isinstance(m, Method) and m.name == name for name, m in METHODS.items())
    assert METHODS["rk4"].fractional is None
    assert {name for name, m in METHODS.items() if m.compressed is not None} == {
        "euler", "abm", "l1"}
    for m in METHODS.values():
        assert issubclass(m.classical, Scheme)
        assert m.scheme(1.0) is m.classical
        if m.fractional is not None:
            assert m.scheme(0.5) is m.fractional is m.scheme(1.0, learnable=True)
        if m.compressed is not None:
            assert issubclass(m.compressed, Compressed) and m.scheme(0.5, history="soe") is \
                m.compressed
    with pytest.raises(AttributeError):
        METHODS["euler"].fractional = None
