"""Suite validation, grid expansion, run statuses, resume, and the command line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_setup import ENV, TESTS, use_fake_tasks, write

from fdebench.cli import main
from fdebench.runner import SuiteError, expand, load_suite, run_suite


@pytest.fixture(autouse=True)
def fake_tasks(monkeypatch):
    """Register the fake tasks here and in every worker process."""
    use_fake_tasks(monkeypatch)


SMALL = """\
name: small
device: cpu
seeds: [0]
measure: {warmup_iters: 1, timed_iters: 2, time_limit_s: 60}
defaults: {alpha: 0.5, t_end: 0.2, step_size: 0.05}
grid:
  gradient: [direct, adjoint]
tasks:
  - task: fake_ok
    grid: {method: [euler, rk4]}
"""


# ---- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ntasks:\n  - task: nope\n",
         r"suite.yaml:3: tasks\[0\].task: unknown task 'nope'; valid tasks: .*fake_ok.*freefall"),
        ("name: x\ncolour: red\ntasks:\n  - task: fake_ok\n",
         r"suite.yaml:2: colour: unknown key; valid keys: defaults, description"),
        ("name: x\ntasks:\n  - task: fake_ok\n    alpha: 1.5\n",
         r"suite.yaml:4: tasks\[0\].alpha: must be a number in \(0, 1\], got 1.5"),
        ("name: x\ntasks:\n  - task: fake_ok\n    method: rk5\n",
         r"suite.yaml:4: tasks\[0\].method: unknown value 'rk5'; valid values: abm, euler, gl, l1, "
         r"rk4 \(engine fdebench\); adaptive_heun, .*dopri5.* \(engine torchdiffeq\)"),
        ("name: x\ngrid:\n  gradient: [direct, adjont]\ntasks:\n  - task: fake_ok\n",
         r"suite.yaml:3: grid.gradient\[1\]: unknown value 'adjont'; valid values: adjoint"),
        ("name: x\ndefaults: {step_size: -0.1}\ntasks:\n  - task: fake_ok\n",
         r"suite.yaml:2: defaults.step_size: must be a positive number, got -0.1"),
        ("name: x\ngrid: {alpha: []}\ntasks:\n  - task: fake_ok\n",
         r"suite.yaml:2: grid.alpha: a grid entry must be a non-empty list, got \[\]"),
        ("name: x\ntasks:\n  - task: fake_ok\n    iters: 2.5\n",
         r"suite.yaml:4: tasks\[0\].iters: must be of type int, got 2.5"),
        ("name: x\nmeasure: {warmup_iters: two}\ntasks:\n  - task: fake_ok\n",
         r"suite.yaml:2: measure.warmup_iters: must be an integer >= 0, got 'two'"),
        ("name: x\ntasks: []\n", r"suite.yaml:2: tasks: a non-empty list of task entries"),
        ("name: x\ntasks:\n  - task: fake_ok\n    alpha: [0.5\n", r"suite.yaml:5: invalid YAML"),
        ("name: x\ntasks:\n  - task: fake_ok\n    history: compressed\n",
         r"suite.yaml:4: tasks\[0\].history: unknown value 'compressed'; valid values: auto, "
         r"fast, soe, stepwise$"),
        ("name: x\ngrid: {soe_tol: [1e-8, 0.5]}\ntasks:\n  - task: fake_ok\n",
         r"suite.yaml:2: grid.soe_tol\[1\]: must be a number in \[1e-13, 0.01\], got 0.5$"),
    ],
    ids=["task", "top-key", "alpha", "method", "grid-value", "step", "empty-grid", "type",
         "measure", "no-tasks", "yaml", "history", "soe-tol"],
)
def test_validation_messages(tmp_path, text, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, text))


def test_every_problem_is_reported_once(tmp_path):
    text = "name: x\ndevice: gpu\ntasks:\n  - task: fake_ok\n    alpha: 0\n    gradient: no\n"
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, text))
    assert len(info.value.problems) == 3


# ---- grid expansion -------------------------------------------------------------------------
def test_grid_expansion_ids_and_skips(tmp_path):
    runs = expand(load_suite(write(tmp_path, SMALL)), "cpu")
    assert len(runs) == 2 * 2  # gradient x method
    ids = [r.run_id for r in runs]
    assert "fake_ok[alpha=0.5,gradient=adjoint,method=rk4,seed=0,step_size=0.05]" in ids
    assert len(set(ids)) == len(ids)
    assert all(r.config["n_steps"] == 4 for r in runs)
    skipped = {r.run_id for r in runs if r.skip}
    assert skipped == {i for i in ids if "rk4" in i}  # rk4 needs alpha == 1


# ---- engine combinations: fixed in an entry -> suite error; produced by a grid -> skip ------
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("    gradient: backsolve\n",
         r"suite.yaml:5: tasks\[0\].gradient: gradient 'backsolve' needs alpha == 1, got "
         r"alpha=0.5: .*; for method 'euler' at alpha=0.5 use one of: adjoint, checkpoint, "
         r"continuous, direct, paper$"),
        ("    engine: torchdiffeq\n    alpha: 1.0\n    method: abm\n",
         r"suite.yaml:7: tasks\[0\].method: method 'abm' is not a method of engine "
         r"'torchdiffeq'; its methods: adaptive_heun, bosh3, dopri5"),
        ("    engine: torchdiffeq\n",
         r"suite.yaml:5: tasks\[0\].engine: engine 'torchdiffeq' solves classical ODEs only "
         r"\(alpha == 1\), got alpha=0.5; for alpha < 1 use engine 'fdebench'$"),
        ("    engine: torchdiffeq\n    alpha: 1.0\n    gradient: paper\n",
         r"suite.yaml:7: tasks\[0\].gradient: engine 'torchdiffeq' has no gradient 'paper'; "
         r"its gradients: backsolve, direct$"),
        ("    method: dopri5\n    alpha: 1.0\n",
         r"suite.yaml:5: tasks\[0\].method: method 'dopri5' is not a method of engine "
         r"'fdebench'; its methods: abm, euler, gl, l1, rk4$"),
        ("    method: rk4\n",
         r"suite.yaml:5: tasks\[0\].method: method 'rk4' solves classical ODEs only"),
        ("    engine: textbook\n    gradient: adjoint\n",
         r"suite.yaml:6: tasks\[0\].gradient: engine 'textbook' has no gradient 'adjoint'; its "
         r"gradients: direct \(for 'adjoint' use engine 'fdebench'\)$"),
        ("    engine: textbook\n    learn_alpha: true\n",
         r"suite.yaml:5: tasks\[0\].engine: engine 'textbook' has no learnable order"),
        ("    gradient: revolve\n",
         r"suite.yaml:5: tasks\[0\].gradient: gradient 'revolve' needs history 'soe': .*; with "
         r"history 'auto' for method 'euler' at alpha=0.5 use one of: adjoint, checkpoint, "
         r"continuous, direct, paper$"),
        ("    history: soe\n    gradient: adjoint\n",
         r"suite.yaml:6: tasks\[0\].gradient: gradient 'adjoint' rebuilds each step from a "
         r"\(N \+ 1\) \|y\| history buffer, .*; with history 'soe' for method 'euler' at "
         r"alpha=0.5 use one of: checkpoint, direct, revolve$"),
        ("    history: soe\n    method: gl\n",
         r"suite.yaml:5: tasks\[0\].history: history 'soe' has no compressed form of method "
         r"'gl' .*; with history 'soe' use one of: abm, euler, l1$"),
        ("    history: soe\n    learn_alpha: true\n",
         r"suite.yaml:5: tasks\[0\].history: history 'soe' is not differentiable in alpha"),
        ("    engine: torchdiffeq\n    alpha: 1.0\n    history: soe\n",
         r"suite.yaml:7: tasks\[0\].history: engine 'torchdiffeq' has no history 'soe'; its "
         r"histories: auto \(for 'soe' use engine 'fdebench'\)$"),
        ("    engine: textbook\n    history: stepwise\n",
         r"suite.yaml:6: tasks\[0\].history: engine 'textbook' has no history 'stepwise'"),
    ],
    ids=["backsolve-alpha", "torchdiffeq-abm", "torchdiffeq-alpha", "torchdiffeq-paper",
         "fdebench-dopri5", "rk4-alpha", "textbook-adjoint", "textbook-learn-alpha",
         "revolve-auto", "soe-adjoint", "soe-gl", "soe-learn-alpha", "torchdiffeq-soe",
         "textbook-history"],
)
def test_fixed_engine_combinations_are_suite_errors(tmp_path, entry, message):
    text = ("name: x\ndefaults: {alpha: 0.5}\ntasks:\n  - task: fake_ok\n" + entry)
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, text))
    assert len(info.value.problems) == 1, info.value.problems
    assert re.search(message, info.value.problems[0]), info.value.problems[0]


def test_engine_combinations_from_a_grid_are_listed_skips(tmp_path, capsys):
    text = """\
name: engines
device: cpu
defaults: {t_end: 0.2, step_size: 0.05}
grid:
  engine: [fdebench, torchdiffeq]
  gradient: [direct, backsolve]
tasks:
  - task: fake_ok
    grid: {alpha: [0.5, 1.0], method: [euler, abm, dopri5]}
"""
    runs = expand(load_suite(write(tmp_path, text)), "cpu")
    skips = {(r.config["engine"], r.config["method"], r.config["gradient"], r.config["alpha"]):
             r.skip for r in runs}
    assert len(skips) == 2 * 2 * 2 * 3
    runnable = {k for k, why in skips.items() if why is None}
    assert runnable == {
        ("fdebench", m, g, a) for m in ("euler", "abm") for g in ("direct", "backsolve")
        for a in (0.5, 1.0) if g == "direct" or a == 1.0
    } | {("torchdiffeq", m, g, 1.0) for m in ("euler", "dopri5")
         for g in ("direct", "backsolve")}
    assert "needs alpha == 1" in skips[("fdebench", "euler", "backsolve", 0.5)]
    assert "not a method of engine 'torchdiffeq'" in skips[("torchdiffeq", "abm", "direct", 1.0)]
    assert "not a method of engine 'fdebench'" in skips[("fdebench", "dopri5", "direct", 1.0)]
    assert "use engine 'fdebench'" in skips[("torchdiffeq", "euler", "direct", 0.5)]
    assert all("engine=" in r.run_id for r in runs)  # the engine varies: the ids name it
    assert main(["run", str(write(tmp_path, text)), "--dry-run"]) == 0  # listed, no traceback
    assert capsys.readouterr().out.count("(skipped: ") == len(skips) - len(runnable)


def test_revolve_with_history_soe_loads_and_is_named_in_its_run_id(tmp_path):
    text = ("name: x\ndevice: cpu\ndefaults: {alpha: 0.5}\ntasks:\n  - task: fake_ok\n"
            "  - task: fake_ok\n    gradient: revolve\n    history: soe\n    soe_tol: 1.0e-6\n")
    runs = expand(load_suite(write(tmp_path, text)), "cpu")
    assert [r.run_id for r in runs] == [
        "fake_ok[alpha=0.5,gradient=direct,seed=0,step_size=0.05]",  # as before the keys existed
        "fake_ok[alpha=0.5,gradient=revolve,history=soe,seed=0,soe_tol=1e-06,step_size=0.05]"]
    assert runs[1].id_keys == ("alpha", "gradient", "history", "seed", "soe_tol", "step_size")
    assert runs[1].config["history"] == "soe" and runs[1].config["soe_tol"] == 1e-6
    assert runs[0].config["history"] == "auto" and runs[0].skip is None is runs[1].skip


def test_history_keys_at_their_default_leave_the_config_hash_as_it_was(tmp_path):
    """A results folder written before ``history`` and ``soe_tol`` existed resumes: the hash
    of a run that leaves them at their defaults is the hash of its configuration without them."""
    import hashlib
    runs = expand(load_suite(write(tmp_path, SMALL)), "cpu")
    for run in runs:
        old = {k: v for k, v in run.config.items() if k not in ("history", "soe_tol")}
        payload = {"task": run.task, "config": old, "device": "cpu",
                   "measure": load_suite(write(tmp_path, SMALL)).measure.__dict__}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        assert run.config_hash == digest
    with_tol = expand(load_suite(write(tmp_path, SMALL.replace(
        "step_size: 0.05}", "step_size: 0.05, soe_tol: 1.0e-6}"))), "cpu")
    assert {r.config_hash for r in with_tol}.isdisjoint({r.config_hash for r in runs})


def test_history_combinations_from_a_grid_are_listed_skips(tmp_path, capsys):
    text = """\
name: histories
device: cpu
defaults: {t_end: 0.2, step_size: 0.05}
grid:
  history: [auto, soe]
  gradient: [direct, adjoint, revolve]
tasks:
  - task: fake_ok
    grid: {alpha: [0.5, 1.0], method: [euler, gl]}
"""
    runs = expand(load_suite(write(tmp_path, text)), "cpu")
    skips = {(r.config["history"], r.config["gradient"], r.config["method"], r.config["alpha"]):
             r.skip for r in runs}
    assert len(skips) == 2 * 3 * 2 * 2
    runnable = {k for k, why in skips.items() if why is None}
    assert runnable == {
        (h, g, m, 1.0) for h in ("auto", "soe") for g in ("direct", "adjoint", "revolve")
        for m in ("euler", "gl")  # alpha = 1: no history, every mode runs
    } | {("auto", g, m, 0.5) for g in ("direct", "adjoint") for m in ("euler", "gl")} \
        | {("soe", g, "euler", 0.5) for g in ("direct", "revolve")}
    assert "needs history 'soe'" in skips[("auto", "revolve", "euler", 0.5)]
    assert "with history 'soe'" in skips[("soe", "adjoint", "euler", 0.5)]
    assert "no compressed form of method 'gl'" in skips[("soe", "direct", "gl", 0.5)]
    assert {"history=soe" in r.run_id for r in runs} == {True, False}
    assert not any("history=auto" in r.run_id for r in runs)  # the default is not named
    assert main(["run", str(write(tmp_path, text)), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("(skipped: ") == len(skips) - len(runnable)


def test_textbook_combinations_from_a_grid_are_listed_skips(tmp_path, capsys):
    text = """\
name: textbook
device: cpu
defaults: {t_end: 0.2, step_size: 0.05}
grid:
  engine: [fdebench, textbook]
  gradient: [direct, adjoint]
tasks:
  - task: fake_ok
    grid: {alpha: [0.5, 1.0], method: [abm, rk4]}
"""
    runs = expand(load_suite(write(tmp_path, text)), "cpu")
    skips = {(r.config["engine"], r.config["method"], r.config["gradient"], r.config["alpha"]):
             r.skip for r in runs}
    runnable = {k for k, why in skips.items() if why is None}
    assert runnable == {("fdebench", "abm", g, a) for g in ("direct", "adjoint")
                        for a in (0.5, 1.0)} | {("fdebench", "rk4", g, 1.0)
                                                for g in ("direct", "adjoint")} \
        | {("textbook", "abm", "direct", a) for a in (0.5, 1.0)}
    assert "its gradients: direct (for 'adjoint' use engine 'fdebench')" in \
        skips[("textbook", "abm", "adjoint", 0.5)]
    assert "not a method of engine 'textbook'" in skips[("textbook", "rk4", "direct", 1.0)]
    assert main(["run", str(write(tmp_path, text)), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("(skipped: ") == len(skips) - len(runnable)


@pytest.mark.slow
def test_textbook_runs_record_engine_and_fidelity(tmp_path):
    text = """\
name: tb
device: cpu
measure: {warmup_iters: 1, timed_iters: 2, time_limit_s: 60}
defaults: {alpha: 0.6, t_end: 0.2, step_size: 0.05, engine: textbook, method: abm}
tasks:
  - task: fake_ok
"""
    assert run_suite(load_suite(write(tmp_path, text)), tmp_path / "r", quiet=True) == {"ok": 1}
    (r,) = _records(tmp_path / "r", "tb")
    assert r["engine"] == "textbook" and r["gradient"] == "direct"
    assert r["nfe_forward"] == 2 * 4 and r["nfe_backward"] == 0  # abm: two per step
    assert r["grad_rel_err"] is None and "fdebench abm direct" in r["grad_fine_reference"]
    assert r["grad_rel_err_fine"] < 0.1


@pytest.mark.slow
def test_torchdiffeq_runs_record_engine_and_nfe(tmp_path):
    text = """\
name: tde
device: cpu
measure: {warmup_iters: 1, timed_iters: 2, time_limit_s: 60}
defaults: {alpha: 1.0, t_end: 0.2, step_size: 0.05, engine: torchdiffeq, method: dopri5}
grid:
  gradient: [direct, backsolve]
tasks:
  - task: fake_ok
"""
    assert run_suite(load_suite(write(tmp_path, text)), tmp_path / "r", quiet=True) == {"ok": 2}
    by_mode = {r["gradient"]: r for r in _records(tmp_path / "r", "tde")}
    for r in by_mode.values():
        assert r["engine"] == "torchdiffeq" and "engine" in r["config_keys"]
        assert r["rtol"] == 1e-6 and r["atol"] == 1e-8  # the documented defaults
        assert r["nfe_forward"] > 0 and r["nfe_forward_mean"] > 0
        assert r["grad_rel_err_fine"] < 1e-4 and "fdebench rk4" in r["grad_fine_reference"]
    assert by_mode["direct"]["nfe_backward"] == 0  # autograd through the solver: no field call
    assert by_mode["backsolve"]["nfe_backward"] > 0  # the adjoint ODE calls the field
    assert by_mode["backsolve"]["grad_rel_err"] < 1e-4


def test_task_grid_overrides_suite_grid_and_defaults(tmp_path):
    entry = "alpha: 1.0\n    grid: {gradient: [checkpoint]}"
    text = SMALL.replace("grid: {method: [euler, rk4]}", entry)
    runs = expand(load_suite(write(tmp_path, text)), "cpu")
    assert {r.config["gradient"] for r in runs} == {"checkpoint"}
    assert {r.config["alpha"] for r in runs} == {1.0}


def test_the_shipped_suites_are_valid():
    for path in sorted((TESTS.parent / "suites").glob("*.yaml")):
        assert expand(load_suite(path), "cpu"), path


# ---- running --------------------------------------------------------------------------------
def _records(results: Path, suite: str = "small") -> list[dict]:
    lines = (results / suite / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_statuses_and_the_suite_goes_on(tmp_path):
    text = """\
name: statuses
device: cpu
measure: {warmup_iters: 0, time_limit_s: 20}
defaults: {t_end: 0.1, step_size: 0.05}
tasks:
  - task: fake_raise
  - task: fake_nan
  - task: fake_slow
  - task: fake_ok
"""
    counts = run_suite(load_suite(write(tmp_path, text)), tmp_path / "results", quiet=True)
    records = {r["task"]: r for r in _records(tmp_path / "results", "statuses")}
    assert records["fake_raise"]["status"] == "error"
    assert records["fake_raise"]["message"] == "RuntimeError: boom"
    assert "Traceback" in records["fake_raise"]["traceback"]
    assert records["fake_nan"]["status"] == "nan"
    assert records["fake_slow"]["status"] == "timeout"
    assert records["fake_ok"]["status"] == "ok"
    assert counts == {"error": 1, "nan": 1, "timeout": 1, "ok": 1}


def test_ok_record_has_the_measurements(tmp_path):
    run_suite(load_suite(write(tmp_path, SMALL)), tmp_path / "results", quiet=True)
    records = _records(tmp_path / "results")
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    by_mode = {r["gradient"]: r for r in records}
    for r in records:
        for key in ["time_per_iter_s", "time_per_iter_iqr_s", "time_forward_s",
                    "time_backward_s", "peak_mem_bytes", "peak_rss_bytes", "nfe_forward",
                    "nfe_backward", "rate_error", "train_curve", "env", "n_steps", "config_hash",
                    "setup_time_s", "data_time_s", "data", "config_keys", "id_keys"]:
            assert r[key] is not None, key
        assert r["peak_mem_bytes"] > 0 and r["peak_rss_bytes"] > 0
        assert r["setup_time_s"] >= r["data_time_s"] >= 0
        assert r["nfe_forward"] == 4 and r["nfe_backward"] in (0, 4)  # euler: one per step
        assert len(r["train_curve"]) == 4
        assert r["env"]["torch_version"]
        assert set(r["config_keys"]) >= {"alpha", "gradient", "seed", "iters", "n_steps"}
        assert set(r["id_keys"]) == {"alpha", "gradient", "method", "seed", "step_size"}
    # direct is the reference of the gradient comparison: no measured 0 is recorded for it
    assert by_mode["direct"]["grad_rel_err"] is None
    assert by_mode["adjoint"]["grad_rel_err"] < 1e-9 and by_mode["adjoint"]["grad_cosine"] > 0.99
    assert {r["grad_reference"] for r in records} == {"direct"}
    assert {r["state_bytes"] for r in records} == {3 * 4}  # the fake task's 3 float32 values


def test_a_revolve_run_with_history_soe_runs_end_to_end(tmp_path):
    text = SMALL.replace("gradient: [direct, adjoint]", "gradient: [direct, revolve]").replace(
        "    grid: {method: [euler, rk4]}", "    history: soe")
    run_suite(load_suite(write(tmp_path, text)), tmp_path / "results", quiet=True)
    by_mode = {r["gradient"]: r for r in _records(tmp_path / "results")}
    revolve = by_mode["revolve"]
    assert revolve["status"] == "ok" and revolve["history"] == "soe", revolve["message"]
    assert revolve["run_id"] == "fake_ok[alpha=0.5,gradient=revolve,seed=0,step_size=0.05]"
    assert 0 < revolve["grad_rel_err"] < 1e-7  # against direct through the exact scheme
    assert 0 < by_mode["direct"]["grad_rel_err"] < 1e-7  # direct through soe is not exact
    assert revolve["nfe_backward"] > 0  # revolve recomputes steps from its checkpoints


@pytest.mark.parametrize(
    ("stop_after", "timed", "stopped"),
    # 1 warm-up, 1 memory iteration, then the timed ones: a stop in the timed window, in the
    # memory iteration, in the warm-up, or never
    [(3, 1, True), (2, 0, True), (1, 0, True), (9, 3, False)],
    ids=["in-window", "in-memory", "in-warmup", "never"],
)
def test_early_stopping_hook(stop_after, timed, stopped):
    from fdebench.runner import Measure, RunDescription
    from fdebench.runner.execute import execute
    from fdebench.tasks import TASKS

    config = TASKS["fake_stop"].resolve({"t_end": 0.1, "iters": 6, "stop_after": stop_after})
    record = execute(RunDescription(
        suite="s", run_id="r", task="fake_stop", config=config, config_hash="h", device="cpu",
        measure=Measure(warmup_iters=1, timed_iters=3, time_limit_s=60)))
    assert record["status"] == "ok", record["message"]
    ran = min(stop_after, 6)
    assert record["hook_calls"] == ran  # called after every iteration, none after the stop
    assert record["iterations"] == len(record["train_curve"]) == ran
    assert record["timed_iters"] == timed and record["stopped_early"] is stopped
    assert (record["time_per_iter_s"] is None) == (timed == 0)
    assert (record["peak_mem_bytes"] is None) == (stop_after < 2)  # the memory iteration ran
    assert record["peak_mem_bytes"] is None or record["peak_mem_bytes"] > 0


def test_resume_skips_finished_runs_and_force_redoes_them(tmp_path):
    suite = load_suite(write(tmp_path, SMALL))
    results = tmp_path / "results"
    run_suite(suite, results, quiet=True)
    path = results / "small" / "runs.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[1][:10])  # interrupted mid-write of the 2nd record
    with pytest.warns(UserWarning, match="truncated"):
        counts = run_suite(suite, results, quiet=True)
    assert counts == {"cached": 1, "ok": 1, "skipped": 2}
    assert run_suite(suite, results, quiet=True) == {"cached": 2, "skipped": 2}
    assert run_suite(suite, results, quiet=True, force=True) == {"ok": 2, "skipped": 2}


def test_kill_9_loses_nothing_finished(tmp_path):
    text = SMALL.replace("[euler, rk4]", "[euler, l1, gl]").replace("iters: 4", "iters: 4")
    path = write(tmp_path, text)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "fdebench.cli", "run", str(path), "--quiet",
           "--results-dir", str(results), "--reports-dir", str(tmp_path / "reports")]
    env = {**os.environ, **ENV}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    runs = results / "small" / "runs.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (runs.exists() and runs.read_text().count("\n") >= 1):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {json.loads(line)["run_id"] for line in runs.read_text().splitlines()}
    assert 1 <= len(finished) < 6
    subprocess.run(cmd, env=env, check=True)
    records = _records(results)
    assert {r["run_id"] for r in records} >= finished
    assert len(records) == len({r["run_id"] for r in records}) == 6  # nothing ran twice


# ---- command line ---------------------------------------------------------------------------
def test_cli_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fdebench: error: ") and "missing.yaml" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("pattern", "count"),
    [("adjoint", 2), ("fake_ok[alpha=0.5,gradient=direct*", 2), ("*method=euler*", 2),
     ("fake_ok[alpha=0.5,gradient=direct,method=euler,seed=0,step_size=0.05]", 1), ("nope", 0)],
)
def test_only_patterns(tmp_path, pattern, count):
    from fdebench.runner import plan

    assert len(plan(load_suite(write(tmp_path, SMALL)), "cpu", pattern)) == count


def test_cli_dry_run_lists_runs(tmp_path, capsys):
    assert main(["run", str(write(tmp_path, SMALL)), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and sum("skipped" in line for line in out) == 2


def test_cli_run_only_then_report_from_stored_records(tmp_path, capsys):
    args = ["--results-dir", str(tmp_path / "r"), "--reports-dir", str(tmp_path / "rep")]
    assert main(["run", str(write(tmp_path, SMALL)), "--quiet", "--only", "adjoint", *args]) == 0
    assert len(_records(tmp_path / "r")) == 1
    out = capsys.readouterr().out
    assert "report:" in out
    readme = tmp_path / "rep" / "small" / "README.md"
    readme.unlink()
    assert main(["report", str(tmp_path / "r" / "small"), "--reports-dir",
                 str(tmp_path / "rep")]) == 0
    assert readme.exists()
