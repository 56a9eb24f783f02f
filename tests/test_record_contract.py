"""The record contract (issue 20): a record takes its declared fields only, names that would
overwrite a record field are suite errors, a run's description is typed, statuses are
constants, and the report reads what the records say instead of restating it."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
from runner_setup import use_fake_tasks, write
from test_report import table_after

import fdebench
from fdebench.report import write_report
from fdebench.report.fidelity import explanation, fine_step
from fdebench.results import (
    ERROR,
    OK,
    RECORD_FIELDS,
    STATUSES,
    RunRecord,
    amend,
    append_record,
    collisions,
)
from fdebench.runner import Measure, RunDescription, SuiteError, load_suite
from fdebench.runner.executors import with_threads

PACKAGE = Path(fdebench.__file__).parent


def _record(**fields) -> RunRecord:
    return RunRecord(suite="s", run_id="r", config_hash="h", task="t",
                     config={"alpha": 0.5, "seed": 0}, **fields)


# ---- the record -------------------------------------------------------------------------------
def test_a_record_refuses_a_field_it_does_not_declare():
    record = _record()
    with pytest.raises(AttributeError):
        record.time_per_iter = 1.0  # misspelt time_per_iter_s
    with pytest.raises(AttributeError, match="'time_per_iter'"):
        record.update({"time_per_iter_s": 1.0, "time_per_iter": 1.0})
    assert record.time_per_iter_s is None  # nothing set when one name is unknown
    record.update({"time_per_iter_s": 2.0, "status": ERROR})
    assert record.to_json()["time_per_iter_s"] == 2.0


def test_names_that_would_overwrite_a_record_field_raise():
    assert collisions(["alpha", "seed"], ["rate_error"]) == []
    assert collisions(["status"], ["wall_s", "alpha", "loss"]) == [
        "parameter 'status' collides with a record field",
        "metric 'wall_s' collides with a record field"]
    assert collisions(["alpha"], ["alpha"]) == [
        "metric 'alpha' collides with the parameter 'alpha'"]
    with pytest.raises(ValueError, match="parameter 'message' collides"):
        RunRecord(suite="s", run_id="r", config_hash="h", task="t", config={"message": 1})
    record = _record()
    with pytest.raises(ValueError, match="metric 'node' collides with a record field"):
        record.update({"metrics": {"node": 1.0}})
    record.metrics = {"seed": 1.0}  # past update: to_json still refuses it
    with pytest.raises(ValueError, match="metric 'seed' collides with the parameter"):
        record.to_json()


def test_the_driver_amends_records_by_field_name_only():
    stored = _record().to_json()
    assert amend(stored, node="n", concurrent_runs=2)["node"] == "n"
    with pytest.raises(AttributeError, match="'nodes'"):
        amend(stored, nodes="n")


def test_statuses_are_the_schemas_constants():
    assert STATUSES == ("ok", "oom", "nan", "timeout", "error")
    assert _record().status == OK


def test_no_status_literal_outside_the_schema():
    """Every writer and reader compares with the constants of fdebench.results.schema: a status
    value spelt out is allowed only as a named module constant that is no status (``PASSED =
    "ok"``, a verdict)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "results" / "schema.py":
            continue
        tree = ast.parse(path.read_text())
        named = {id(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)}
        found += [f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}"
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value in STATUSES
                  and id(node) not in named]
    assert not found, "status literals (use fdebench.results.OK, ...):\n" + "\n".join(found)


# ---- the suite loader -------------------------------------------------------------------------
@pytest.fixture
def colliding_tasks(monkeypatch):
    """Fake tasks whose names would overwrite record fields, registered like the others."""
    use_fake_tasks(monkeypatch)
    from fake_tasks import Decay

    from fdebench.tasks import TASKS

    class StatusParameter(Decay):
        name = "fake_status"
        params: ClassVar[dict] = {"iters": 4, "sleep": 0.0, "status": "fine"}

    class WallMetric(Decay):
        name = "fake_wall"
        metrics: ClassVar[dict] = {"wall_s": "lower", "iters": None}

    for cls in (StatusParameter, WallMetric):
        monkeypatch.setitem(TASKS, cls.name, cls)


def test_a_task_whose_names_collide_with_record_fields_is_a_suite_error(tmp_path,
                                                                         colliding_tasks):
    text = "name: x\ntasks:\n  - task: fake_ok\n  - task: fake_status\n  - task: fake_wall\n"
    with pytest.raises(SuiteError) as error:
        load_suite(write(tmp_path, text))
    assert [p.split("/")[-1] for p in error.value.problems] == [
        "suite.yaml:4: tasks[1]: task 'fake_status' cannot be recorded: parameter 'status' "
        "collides with a record field",
        "suite.yaml:5: tasks[2]: task 'fake_wall' cannot be recorded: metric 'iters' collides "
        "with the parameter 'iters'",
        "suite.yaml:5: tasks[2]: task 'fake_wall' cannot be recorded: metric 'wall_s' "
        "collides with a record field",
    ]


# ---- the run description and the worker -------------------------------------------------------
def _description(**config) -> RunDescription:
    from fdebench.tasks import TASKS

    return RunDescription(suite="s", run_id="r", task="fake_ok",
                          config=TASKS["fake_ok"].resolve({"t_end": 0.1, **config}),
                          config_hash="h", id_keys=("alpha", "seed"),
                          measure=Measure(warmup_iters=1, timed_iters=2), device="cpu")


def test_a_run_description_travels_as_json(monkeypatch):
    use_fake_tasks(monkeypatch)
    run = _description()
    data = json.loads(json.dumps(run.to_json()))
    assert RunDescription.from_json(data) == run
    with pytest.raises(TypeError, match="measure_"):
        RunDescription.from_json({**data, "measure_": {}})
    with pytest.raises(TypeError, match="timed_iter"):
        RunDescription.from_json({**data, "measure": {"timed_iter": 2}})
    threaded = with_threads(run, 2)
    assert threaded.measure.threads == 2 and run.measure.threads is None
    assert with_threads(run, None) is run
    assert with_threads(threaded, 4) is threaded  # the suite's threads stay


def test_a_misspelt_measurement_fails_its_run_loudly(monkeypatch):
    """A fidelity dict with an unknown key is an ``error`` naming it, not a missing column."""
    use_fake_tasks(monkeypatch)
    from fdebench.runner import execute as execute_module

    real = execute_module.fidelity
    monkeypatch.setattr(execute_module, "fidelity", lambda *a, **k: {
        **real(*a, **k), "grad_rel_err_fien": 0.0})
    record = execute_module.execute(_description())
    assert record["status"] == ERROR
    assert "not a run record field: 'grad_rel_err_fien'" in record["message"]
    assert "grad_rel_err_fien" not in record


def test_a_metric_named_like_a_record_field_fails_its_run(monkeypatch):
    """A task may return metrics it did not declare: one that would overwrite a field fails
    the run (the loader cannot see it) and the stored record keeps its own field."""
    use_fake_tasks(monkeypatch)
    from fake_tasks import Decay

    from fdebench.runner.execute import execute

    monkeypatch.setattr(Decay, "evaluate", lambda self: {"rate_error": 0.0, "wall_s": -1.0})
    record = execute(_description())
    assert record["status"] == ERROR
    assert "metric 'wall_s' collides with a record field" in record["message"]
    assert record["wall_s"] > 0 and "rate_error" not in record


def test_a_run_records_its_fine_references_factor_and_method(monkeypatch):
    use_fake_tasks(monkeypatch)
    from fdebench.runner.execute import execute
    from fdebench.runner.fidelity import FINE_FACTOR

    record = execute(_description(method="l1"))
    assert record["status"] == OK, record["message"]
    assert (record["grad_fine_factor"], record["grad_fine_method"]) == (FINE_FACTOR, "l1")
    assert set(record) - set(record["config_keys"]) - set(record["metric_names"]) == set(
        RECORD_FIELDS)


# ---- the report reads the records -------------------------------------------------------------
def test_the_fidelity_text_takes_factor_and_methods_from_the_records():
    runs = pd.DataFrame({"engine": ["fdebench", "torchdiffeq", "torchdiffeq"],
                         "method": ["l1", "euler", "dopri5"],
                         "grad_fine_method": ["l1", "euler", "rk4"],
                         "grad_fine_factor": [4, 4, 4]})
    text = explanation(runs)
    assert "at a 4x finer step, same alpha and method (torchdiffeq runs: fdebench `rk4` for " \
           "`dopri5`, fdebench `euler` for `euler`):" in text
    assert "(about 1/4 of the run's for a first-order method)" in text
    assert fine_step(runs.assign(grad_fine_factor=[8, 8, 16])) == "an 8x or 16x finer step"
    assert fine_step(runs.drop(columns="grad_fine_factor")) == "a finer step"
    plain = explanation(runs.iloc[:1].assign(grad_fine_factor=8))
    assert "at an 8x finer step, same alpha and method: the distance" in plain


def test_the_report_reads_the_stored_n_steps(tmp_path):
    """``t_end / step_size`` = 3.33 and 1.43: the runner's grids have 4 and 2 steps (it rounds
    up), and the report prints what the records say, never a rounding of its own."""
    for step_size, n_steps in ((0.3, 4), (0.7, 2)):
        for gradient in ("direct", "adjoint"):
            append_record(tmp_path / "results" / "s" / "runs.jsonl", {
                "suite": "s", "run_id": f"d[gradient={gradient},step_size={step_size}]",
                "task": "d", "status": OK, "gradient": gradient, "alpha": 0.5,
                "method": "euler", "t_end": 1.0, "step_size": step_size, "n_steps": n_steps,
                "seed": 0, "peak_mem_bytes": 1000, "time_per_iter_s": 0.1,
                "id_keys": ["gradient", "step_size"]})
    text = write_report(tmp_path / "results" / "s", tmp_path / "reports").read_text()
    rows = table_after(text, "## Task `d`", "n_steps")
    assert [(r["n_steps"], r["step_size"]) for r in rows[::2]] == [("2", "0.7"), ("4", "0.3")]
