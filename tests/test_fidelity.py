"""The gradient-fidelity fields of a record: against direct, and against the fine reference."""

from __future__ import annotations

import pytest
import torch
from fake_tasks import Decay
from task_setup import make

from fdebench.engine import mittag_leffler
from fdebench.runner import fidelity as fidelity_module
from fdebench.runner.fidelity import FINE_FACTOR, fidelity

RATE, T = 0.5, 1.0  # Decay: D^a y = -rate y, y0 = 1, loss mean((y(T) - 0.5)^2)


pytestmark = pytest.mark.usefixtures("one_thread")


def exact_gradient(alpha: float) -> float:
    """dL/drate of the Decay task: y(T) = E_a(z), z = -rate T^a, dE_a/dz = E_{a,a}(z) / a."""
    z = -RATE * T**alpha
    y = float(mittag_leffler(alpha, z))
    dy = -(T**alpha) * float(mittag_leffler(alpha, z, alpha)) / alpha
    return 2 * (y - 0.5) * dy


def decay(**over):
    return make(Decay, t_end=T, **over)


@pytest.mark.parametrize("alpha", [0.6, 1.0])
def test_fine_error_of_direct_is_its_distance_from_the_continuous_gradient(alpha):
    """Euler is first order: the reference at h/8 is itself 1/8 as far from the exact gradient
    (same sign), so grad_rel_err_fine reads about 7/8 of direct's true error."""
    task = decay(alpha=alpha, step_size=0.05, gradient="direct")
    out = fidelity(task, task.config)
    grad = task.gradient_probe("direct").item()
    exact = exact_gradient(alpha)
    true_error = abs(grad - exact) / abs(exact)
    assert out["grad_rel_err"] is None and out["grad_cosine"] is None  # direct: the reference
    assert out["grad_fine_skipped"] is None
    assert 0.75 < out["grad_rel_err_fine"] / true_error < 1.0


def test_fine_error_halves_with_the_step():
    errors = []
    for h in (0.05, 0.025):
        task = decay(alpha=0.6, step_size=h, gradient="continuous")
        errors.append(fidelity(task, task.config)["grad_rel_err_fine"])
    assert 1.6 < errors[0] / errors[1] < 2.4


def test_fine_reference_is_fdebench_float64_at_a_finer_step():
    task = decay(alpha=1.0, step_size=0.05, gradient="backsolve", engine="torchdiffeq",
                 method="rk4")
    out = fidelity(task, task.config)
    assert out["grad_fine_reference"].startswith(
        f"fdebench rk4 direct, float64, step {0.05 / FINE_FACTOR:g}")
    fine = task.gradient_probe("direct", step_size=0.05 / FINE_FACTOR, dtype=torch.float64,
                               engine="fdebench", method="rk4")
    assert fine.dtype == torch.float64
    assert abs(fine.item() - exact_gradient(1.0)) < 1e-10  # RK4 at h = 0.00625
    assert out["grad_rel_err_fine"] < 1e-6  # torchdiffeq's rk4 at h = 0.05
    assert out["grad_rel_err"] < 1e-6  # backsolve against torchdiffeq's own direct


def test_paper_mode_stays_biased_at_alpha_below_one():
    """The published adjoint does not converge for alpha < 1 (see engine/adjoints/paper.py):
    at alpha = 0.3 its distance from the fine reference stops shrinking with the step (it
    tends to a bias near 0.8 % here) while direct's halves."""
    errors: dict[str, list[float]] = {"direct": [], "paper": []}
    for h in (0.0125, 0.00625):
        for mode in errors:
            task = decay(alpha=0.3, step_size=h, gradient=mode)
            errors[mode].append(fidelity(task, task.config)["grad_rel_err_fine"])
    assert 1.6 < errors["direct"][0] / errors["direct"][1] < 2.4
    assert errors["paper"][1] > 0.8 * errors["paper"][0]
    assert errors["paper"][1] > 4 * errors["direct"][1]


def test_cost_cap_skips_the_reference_and_says_why(monkeypatch):
    monkeypatch.setattr(fidelity_module, "FINE_WORK_CAP", 100)
    task = decay(alpha=0.6, step_size=0.05, gradient="adjoint")
    out = fidelity(task, task.config)
    # the probe solves a state of 3 elements for 20 steps: 60 element-steps, 480 at h / 8
    assert out["grad_rel_err_fine"] is None
    assert out["grad_fine_skipped"].startswith("cost cap: 480 element-steps")
    assert out["grad_rel_err"] < 1e-12  # the comparison with direct is still made


@pytest.mark.parametrize("gradient", ["revolve", "direct", "checkpoint"])
def test_history_soe_is_compared_with_the_exact_scheme(gradient):
    """The reference runs the exact scheme (history auto), so a run with ``history: soe`` reads
    its distance from the exact scheme's gradient, of the order of ``soe_tol`` (far below it
    here), whatever its mode: direct through the compressed scheme is not its own reference."""
    task = decay(alpha=0.6, step_size=0.05, gradient=gradient, history="soe", soe_tol=1e-6)
    out = fidelity(task, task.config)
    assert out["grad_reference"] == "direct"
    assert 0 < out["grad_rel_err"] < 1e-6
    assert out["grad_cosine"] == pytest.approx(1.0, abs=1e-12)
    fine = task.gradient_probe("direct", **fidelity_module.fine_settings(task.config))
    exact_fine = decay(alpha=0.6, step_size=0.05).gradient_probe(
        "direct", **fidelity_module.fine_settings(task.config))
    assert torch.equal(fine, exact_fine)  # the fine reference is the exact scheme's too


def test_past_the_work_cap_the_reference_is_the_exact_adjoint(monkeypatch):
    """An fdebench probe past FINE_WORK_CAP is compared with ``adjoint`` (history auto), never
    with direct's whole graph; ``grad_reference`` says so, and adjoint is then the reference."""
    monkeypatch.setattr(fidelity_module, "FINE_WORK_CAP", 50)  # the probe does 3 x 20 = 60
    probed = []
    for gradient, history in (("direct", "auto"), ("adjoint", "auto"), ("revolve", "soe")):
        task = decay(alpha=0.6, step_size=0.05, gradient=gradient, history=history)
        probe = task.gradient_probe
        monkeypatch.setattr(task, "gradient_probe", lambda mode, probe=probe, **kw: (
            probed.append((mode, kw.get("history"))) or probe(mode, **kw)))
        out = fidelity(task, task.config, fine=False)
        assert out["grad_reference"] == "adjoint"
        if gradient == "adjoint":
            assert out["grad_rel_err"] is None and out["grad_cosine"] is None
        elif gradient == "direct":
            assert out["grad_rel_err"] < 1e-12  # exact adjoint: direct to rounding
        else:
            assert 0 < out["grad_rel_err"] < 1e-7  # soe_tol 1e-8: the compressed scheme's
    assert ("direct", "auto") not in probed and probed.count(("adjoint", "auto")) == 2


def test_below_the_cap_or_on_another_engine_the_reference_is_direct():
    config = {"engine": "fdebench", "gradient": "adjoint"}
    assert fidelity_module.reference_mode(config, fidelity_module.FINE_WORK_CAP) == "direct"
    assert fidelity_module.reference_mode(config, fidelity_module.FINE_WORK_CAP + 1) == "adjoint"
    assert fidelity_module.reference_mode({"engine": "textbook"}, 10**9) == "direct"
