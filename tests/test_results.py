"""Run records: append/read round trip, crash tolerance, fsync, loading into pandas."""

from __future__ import annotations

import ast
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

import fdebench.results
from fdebench.results import append_record, completed_ok, load, read_records
from fdebench.results import storage as storage_module

ENV = {"fdebench_version": "0.1.0", "git_commit": "abc123", "torch_version": "2.5.1",
       "python": "3.11.2", "device_name": "cpu", "cpu": "x86_64", "threads": 2, "hostname": "h"}


def record(run_id: str, status: str = "ok", **extra) -> dict:
    """A small run record."""
    base = {"suite": "s", "run_id": run_id, "config_hash": f"hash-{run_id}", "task": "t",
            "gradient": "direct", "status": status, "peak_mem_bytes": 1024,
            "train_curve": [3.0, 2.0, 1.0], "metric_names": ["test_mse"], "env": ENV}
    return base | extra


def test_append_read_round_trip(tmp_path):
    path = tmp_path / "deep" / "suite" / "runs.jsonl"  # parents are created
    records = [record("a"), record("b", status="oom", message="out of memory", traceback=None),
               record("c", grad_rel_err=float("nan"))]
    for r in records:
        append_record(path, r)
    back = read_records(path)
    assert back[:2] == records[:2]
    assert math.isnan(back[2]["grad_rel_err"])
    assert len(path.read_text().splitlines()) == 3


def test_numpy_values_are_written_as_json(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "runs.jsonl"
    append_record(path, record("a", wall_s=np.float64(1.5), nfe_forward=np.int64(7),
                               train_curve=np.array([1.0, 0.5])))
    (back,) = read_records(path)
    assert (back["wall_s"], back["nfe_forward"], back["train_curve"]) == (1.5, 7, [1.0, 0.5])


def test_fsync_after_every_record(tmp_path, monkeypatch):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage_module.os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    for name in "abc":
        append_record(tmp_path / "runs.jsonl", record(name))
    assert len(calls) == 3


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, record("a"))
    append_record(path, record("b"))
    with path.open("a") as f:  # a crash in the middle of writing the third record
        f.write(json.dumps(record("c"))[:25])
    with pytest.warns(UserWarning, match="truncated last line"):
        assert [r["run_id"] for r in read_records(path)] == ["a", "b"]


def test_append_after_a_truncated_line_starts_a_new_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, record("a"))
    with path.open("a") as f:
        f.write('{"run_id": "b", "sta')
    append_record(path, record("c"))  # the resumed suite goes on writing
    with pytest.warns(UserWarning, match=r"runs.jsonl:2: skipping unreadable line"):
        assert [r["run_id"] for r in read_records(path)] == ["a", "c"]


def test_completed_ok_latest_record_wins(tmp_path):
    path = tmp_path / "runs.jsonl"
    assert completed_ok(path) == {}  # nothing run yet
    append_record(path, record("a"))
    append_record(path, record("b", status="timeout"))
    append_record(path, record("c"))
    append_record(path, record("c", status="error"))  # a failed re-run
    append_record(path, record("b", config_hash="new"))
    assert completed_ok(path) == {"a": "hash-a", "b": "new"}


@pytest.fixture
def results_dir(tmp_path) -> Path:
    """``results/`` with two suites; suite ``one`` re-runs ``x``."""
    root = tmp_path / "results"
    append_record(root / "one" / "runs.jsonl", record("x", suite="one", peak_mem_bytes=1))
    append_record(root / "one" / "runs.jsonl", record("y", suite="one"))
    append_record(root / "one" / "runs.jsonl", record("x", suite="one", peak_mem_bytes=2))
    append_record(root / "two" / "runs.jsonl", record("x", suite="two", extra_key="kept"))
    return root


def test_load_suite_folder_last_record_wins(results_dir):
    frame = load(results_dir / "one")
    assert list(frame["run_id"]) == ["y", "x"]
    assert frame.set_index("run_id").loc["x", "peak_mem_bytes"] == 2


def test_load_parent_folder_reads_every_suite(results_dir):
    frame = load(results_dir)
    assert sorted(zip(frame["suite"], frame["run_id"], strict=True)) == [
        ("one", "x"), ("one", "y"), ("two", "x")]  # the same run id in two suites is kept
    assert frame.loc[frame["suite"] == "two", "extra_key"].item() == "kept"


def test_load_file(results_dir):
    frame = load(results_dir / "two" / "runs.jsonl")
    assert list(frame["run_id"]) == ["x"]


def test_load_flattens_env_and_keeps_lists(results_dir):
    frame = load(results_dir / "one")
    assert "env" not in frame.columns
    assert frame["env.torch_version"].tolist() == ["2.5.1", "2.5.1"]
    assert frame["env.threads"].tolist() == [2, 2]
    assert frame["train_curve"].iloc[0] == [3.0, 2.0, 1.0]
    assert frame["metric_names"].iloc[0] == ["test_mse"]


def test_load_fills_suite_from_folder_and_core_columns(tmp_path):
    path = tmp_path / "mysuite" / "runs.jsonl"
    append_record(path, {"run_id": "a", "wall_s": 1.0, "env": None})
    frame = load(tmp_path / "mysuite")
    assert frame["suite"].tolist() == ["mysuite"]
    assert {"task", "gradient", "status"} <= set(frame.columns)
    assert "env" not in frame.columns


def test_load_empty_file_gives_empty_frame(tmp_path):
    (tmp_path / "runs.jsonl").write_text("")
    frame = load(tmp_path)
    assert isinstance(frame, pd.DataFrame) and frame.empty
    assert "status" in frame.columns


@pytest.mark.parametrize("name", ["missing", "empty"], ids=["no-such-path", "empty-folder"])
def test_load_missing_path_raises_naming_it(tmp_path, name):
    path = tmp_path / name
    if name == "empty":
        path.mkdir()
    with pytest.raises(FileNotFoundError, match=str(path)):
        load(path)


def test_results_imports_no_torch():
    package = Path(fdebench.results.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"torch", "fdebench"}, f"{path.name}: {name}"
                if isinstance(node, ast.ImportFrom) and node.level:
                    outside = node.level > 1 and not (node.level == 2 and name == "errors")
                    assert not outside, f"{path.name} imports outside results/ (and errors)"
