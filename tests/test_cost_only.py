"""Cost-only runs (``cost_only``), the missing observations of ``lotka_volterra`` and task
declarations of what metrics mean: the runner's side of the paper-scale verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from runner_setup import write

from fdebench.runner import Measure, RunDescription, SuiteError, load_suite
from fdebench.runner.execute import execute
from fdebench.runner.fidelity import COST_ONLY_SKIP
from fdebench.runner.grid import expand
from fdebench.tasks import HIGHER, LOWER, TASKS

MEASURE = Measure(warmup_iters=1, timed_iters=2, time_limit_s=120, threads=1)


def run(gradient: str, cost_only: bool, **overrides) -> dict:
    """One ``synthetic`` run in this process (small: batch 8, dim 4, N = 5)."""
    config = TASKS["synthetic"].resolve({
        "gradient": gradient, "cost_only": cost_only, "batch": 8, "dim": 4, "hidden": 8,
        "t_end": 0.5, "step_size": 0.1, "iters": 6, **overrides})
    record = execute(RunDescription(suite="s", run_id=f"r-{gradient}-{cost_only}",
                                    task="synthetic", config=config, config_hash="h",
                                    device="cpu", measure=MEASURE))
    assert record["status"] == "ok", record["message"]
    return record


def test_a_cost_only_run_measures_and_skips_training_and_evaluation():
    cost, trained = run("adjoint", True), run("adjoint", False)
    # warm-up 1 + memory 1 + timed 2, not the task's 6 iterations; no metrics
    assert cost["iterations"] == len(cost["train_curve"]) == 4 and cost["timed_iters"] == 2
    assert trained["iterations"] == 6
    assert "train_mse" in trained and "train_mse" not in cost
    assert cost["metric_names"] == ["train_mse"]  # what the task would report, declared
    assert cost["cost_only"] is True and trained["cost_only"] is False
    # the gradient against direct's is measured; the fine-step reference is not
    assert cost["grad_rel_err"] < 1e-6 and cost["grad_fine_skipped"] == COST_ONLY_SKIP
    assert trained["grad_rel_err_fine"] is not None
    # the same allocator peak and field evaluations per iteration as the trained run
    assert cost["peak_mem_bytes"] == trained["peak_mem_bytes"] > 0
    assert cost["nfe_forward"] == trained["nfe_forward"] == 5


def test_cost_only_timed_iterations_default():
    config = TASKS["synthetic"].resolve({"cost_only": True, "batch": 4, "dim": 2, "hidden": 4,
                                         "t_end": 0.2, "step_size": 0.1})
    record = execute(RunDescription(
        suite="s", run_id="r", task="synthetic", config=config, config_hash="h", device="cpu",
        measure=replace(MEASURE, warmup_iters=0, timed_iters=None)))
    assert record["timed_iters"] == 3 and record["iterations"] == 4  # 1 memory + 3 timed


@pytest.mark.parametrize(
    ("text", "message"),
    [("measure: {cost_only: 1}\n", r"suite.yaml:2: measure.cost_only: must be true or false"),
     ("defaults: {cost_only: 'yes'}\n", r"defaults.cost_only: must be true or false, got 'yes'"),
     ("grid: {cost_only: [true, 0]}\n", r"grid.cost_only\[1\]: must be true or false, got 0")],
    ids=["measure", "defaults", "grid"],
)
def test_cost_only_must_be_a_boolean(tmp_path, text, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, f"name: x\n{text}tasks:\n  - task: synthetic\n"))


def test_measure_cost_only_is_every_runs_default_and_an_entry_overrides_it(tmp_path):
    suite = load_suite(write(tmp_path, (
        "name: x\nmeasure: {cost_only: true}\ntasks:\n  - task: synthetic\n"
        "  - task: freefall\n    cost_only: false\n")))
    runs = {r.task: r for r in expand(suite, "cpu")}
    assert runs["synthetic"].config["cost_only"] is True
    assert runs["freefall"].config["cost_only"] is False
    both = expand(load_suite(write(tmp_path, (
        "name: x\ntasks:\n  - task: synthetic\n    grid: {cost_only: [true, false]}\n"))), "cpu")
    assert sorted(r.run_id for r in both) == [
        "synthetic[alpha=0.5,cost_only=False,gradient=direct,seed=0,step_size=0.05]",
        "synthetic[alpha=0.5,cost_only=True,gradient=direct,seed=0,step_size=0.05]"]


# ---- lotka_volterra: noisy and incomplete observations ------------------------------------------
@pytest.mark.parametrize("value", [-0.1, 0.95, 1.0])
def test_missing_outside_its_range_is_a_suite_error(tmp_path, value):
    text = f"name: x\ntasks:\n  - task: lotka_volterra\n    missing: {value}\n"
    with pytest.raises(SuiteError, match=rf"suite.yaml:4: tasks\[0\].missing: must be in "
                                         rf"\[0, 0.9\], got {value}"):
        load_suite(write(tmp_path, text))


def lv(**overrides):
    cls = TASKS["lotka_volterra"]
    task = cls(cls.resolve({"alpha": 0.8, "method": "abm", "t_end": 1.0, "step_size": 0.025,
                            "noise": 0.01, **overrides}), torch.device("cpu"))
    task.setup()
    return task


def test_missing_drops_a_seeded_fraction_of_the_training_times():
    full, holes, again = lv(), lv(missing=0.3), lv(missing=0.3)
    assert len(full.kept) == full.n_train == 20
    assert len(holes.kept) == 14 and torch.equal(holes.kept, again.kept)  # 30% of 20, seeded
    assert not torch.equal(holes.kept, lv(missing=0.3, seed=1).kept)
    times = holes.model.t_eval[1:]
    assert torch.equal(times, full.model.t_eval[1:][holes.kept])
    assert torch.diff(times).max() > torch.diff(times).min() * 1.5  # irregular
    assert holes.train_obs.shape == (14, 2) and holes.test_obs.shape == full.test_obs.shape
    # the kept observations are those of the complete data, noise included
    assert torch.equal(holes.train_obs, full.train_obs[holes.kept])


def test_fitting_incomplete_observations_recovers_the_rates():
    task = lv(missing=0.3, noise=0.0, iters=60)
    task.fit()
    metrics = task.evaluate()
    assert metrics["param_rel_err"] < 0.02 and metrics["train_mse"] < 1e-6


def test_missing_observations_keep_the_modes_exact():
    task = lv(missing=0.3)
    task.snapshot()
    direct = task.gradient_probe("direct")
    for mode in ("adjoint", "checkpoint"):
        assert torch.allclose(task.gradient_probe(mode), direct, rtol=1e-10, atol=0)


# ---- declared metric meaning ------------------------------------------------------------------
def test_every_task_declares_its_metrics_directions_and_the_record_carries_them():
    for cls in TASKS.values():
        assert cls.metrics and all(d in (HIGHER, LOWER, None) for d in cls.metrics.values())
        assert next(iter(cls.metrics.values())) in (HIGHER, LOWER), cls.name  # the headline
    record = run("direct", False)
    assert record["metric_directions"] == {"train_mse": LOWER}
    assert record["true_values"] == {}
    truth = lv(alpha_true=0.75, model="parametric").true_values()
    assert truth == {"alpha": 0.75, "a": 1.5, "b": 1.0, "c": 1.0, "d": 3.0}
    assert lv().true_values()["alpha"] == 0.8  # alpha_true -1: the run's alpha
