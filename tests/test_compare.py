"""``fdebench compare``: threshold specs, folder and benchmark-JSON comparisons, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fdebench.cli import main
from fdebench.compare import compare_paths, parse_fail_on, read_results, render
from fdebench.results import RUNS_FILE, append_record

REPO = Path(__file__).resolve().parents[1]


# ---- helpers --------------------------------------------------------------------------------
def record(run_id: str, **fields) -> dict:
    base = {"suite": "s", "run_id": run_id, "config_hash": "h-" + run_id, "task": "t",
            "gradient": "adjoint", "status": "ok", "message": "", "peak_mem_bytes": 1_000_000,
            "time_per_iter_s": 0.10, "grad_rel_err": 1e-12, "test_accuracy": 0.95}
    return {**base, **fields}


def folder(tmp_path: Path, name: str, *records: dict) -> Path:
    path = tmp_path / name
    for r in records:
        append_record(path / RUNS_FILE, r)
    return path


def bench_json(tmp_path: Path, name: str, benches: dict[str, dict], cpu: str = "CPU A") -> Path:
    """A pytest-benchmark JSON file: ``{short name: extra_info (+ 'median')}``."""
    data = {"machine_info": {"cpu": {"brand_raw": cpu}}, "benchmarks": [
        {"name": short, "fullname": f"benchmarks/bench_x.py::{short}",
         "stats": {"median": info.pop("median", 0.01), "mean": 0.011, "rounds": 5},
         "extra_info": {"method": "euler", **info}}
        for short, info in benches.items()
    ]}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# ---- spec -----------------------------------------------------------------------------------
def test_spec_parses_every_kind_of_limit():
    spec = "peak_mem_bytes:+10%, test_accuracy:-1pp,grad_rel_err:<1e-8,x:-5%,y:+0.5,z:>0.9"
    got = [(t.metric, t.op, t.amount, t.unit) for t in parse_fail_on(spec)]
    assert got == [("peak_mem_bytes", "+", 10, "%"), ("test_accuracy", "-", 1, "pp"),
                   ("grad_rel_err", "<", 1e-8, ""), ("x", "-", 5, "%"), ("y", "+", 0.5, ""),
                   ("z", ">", 0.9, "")]


@pytest.mark.parametrize(("item", "baseline", "passes", "fails"), [
    ("m:+10%", 100.0, 110.0, 110.5),      # relative increase: the limit itself passes
    ("m:-10%", 100.0, 90.0, 89.9),        # relative decrease
    ("m:+0.5", 2.0, 2.5, 2.6),            # absolute increase, metric units
    ("m:-1.0", 0.95, 0.0, -0.1),          # absolute decrease, metric units (a fraction: 1.0!)
    ("m:-1pp", 0.95, 0.94, 0.939),        # percentage points of a fraction
    ("m:<1e-8", 0.0, 9e-9, 1e-8),         # strict upper bound, baseline ignored
    ("m:>0.9", 1.0, 0.91, 0.9),           # strict lower bound
    ("m:+10%", 0.0, 0.0, 1e-30),          # relative to 0: no increase allowed
], ids=lambda v: str(v))
def test_threshold_bounds(item, baseline, passes, fails):
    (threshold,) = parse_fail_on(item)
    assert not threshold.fails(baseline, passes)
    assert threshold.fails(baseline, fails)


@pytest.mark.parametrize("spec", ["", "peak_mem_bytes", "peak_mem_bytes:10%", "m:+", "m:+x%",
                                  "m:<1%", "m:+-1", "m:+1,", ":+1", "m:+1%%", "m:*2"])
def test_malformed_spec_is_one_clear_error(spec):
    with pytest.raises(ValueError, match="malformed --fail-on") as error:
        parse_fail_on(spec)
    assert "\n" not in str(error.value)


# ---- harness results folders ------------------------------------------------------------------
def test_folder_comparison_reports_each_regression(tmp_path):
    base = folder(tmp_path, "base", record("a"), record("b"))
    cur = folder(tmp_path, "cur",
                 record("a", peak_mem_bytes=1_200_000, time_per_iter_s=0.11),   # +20% memory
                 record("b", grad_rel_err=1e-6, test_accuracy=0.93))            # fidelity, -2pp
    spec = "peak_mem_bytes:+10%,time_per_iter_s:+25%,grad_rel_err:<1e-8,test_accuracy:-1pp"
    result = compare_paths(base, cur, spec)
    assert result.runs == 2
    assert len(result.regressions) == 3
    text = "\n".join(result.regressions)
    assert "a: peak_mem_bytes 1,000,000 -> 1,200,000 (+20.0%)" in text
    assert "b: grad_rel_err" in text and "b: test_accuracy" in text
    assert "time_per_iter_s" not in text  # +10% is within +25%
    table = result.table.set_index(["run", "metric"])
    assert table.loc[("a", "time_per_iter_s"), "result"] == "ok"
    assert table.loc[("a", "peak_mem_bytes"), "result"] == "REGRESSION"


def test_a_run_that_stopped_succeeding_is_a_regression(tmp_path):
    base = folder(tmp_path, "base", record("a"))
    cur = folder(tmp_path, "cur", record("a", status="oom", message="OutOfMemoryError: x",
                                         peak_mem_bytes=None))
    result = compare_paths(base, cur, "peak_mem_bytes:+10%")
    assert result.regressions == ["a: status ok -> oom (OutOfMemoryError: x)"]


def test_metric_missing_in_current_is_a_regression(tmp_path):
    base = folder(tmp_path, "base", record("a"))
    cur = folder(tmp_path, "cur", record("a", grad_rel_err=None))
    (line,) = compare_paths(base, cur, "grad_rel_err:<1e-8").regressions
    assert line == "a: grad_rel_err missing in the current results"


def test_config_hash_mismatch_is_reported(tmp_path):
    base = folder(tmp_path, "base", record("a"))
    cur = folder(tmp_path, "cur", record("a", config_hash="other"))
    result = compare_paths(base, cur, "peak_mem_bytes:+10%")
    assert not result.regressions
    assert result.warnings == ["a: configuration differs (config_hash h-a -> other)"]


def test_runs_on_one_side_only_are_an_error_listing_them(tmp_path):
    base = folder(tmp_path, "base", record("a"), record("gone"))
    cur = folder(tmp_path, "cur", record("a"), record("new1"), record("new2"))
    with pytest.raises(ValueError) as error:
        compare_paths(base, cur)
    lines = str(error.value).splitlines()
    assert lines[0].startswith("1 run(s) only in the baseline") and lines[0].endswith("gone")
    assert lines[1].startswith("2 run(s) only in the current") and "new1, new2" in lines[1]
    result = compare_paths(base, cur, allow_missing=True)
    assert result.runs == 1 and len(result.warnings) == 2


def test_unknown_metric_is_an_error_naming_the_known_ones(tmp_path):
    base = folder(tmp_path, "base", record("a"))
    with pytest.raises(ValueError, match=r"unknown metric.*peak_mem_byte;.*peak_mem_bytes"):
        compare_paths(base, base, "peak_mem_byte:+10%")


def test_without_thresholds_the_table_shows_what_changed(tmp_path):
    base = folder(tmp_path, "base", record("a"))
    cur = folder(tmp_path, "cur", record("a", time_per_iter_s=0.2))
    result = compare_paths(base, cur)
    assert list(result.table["metric"]) == ["time_per_iter_s"]
    assert result.table["change"].iloc[0] == "+100.0%"
    assert "no regression" in render(result)


def test_committed_quickstart_records_pass_the_readme_gate_and_a_perturbed_copy_fails(tmp_path):
    reference = REPO / "results" / "reference" / "quickstart"
    fail_on = "peak_mem_bytes:+10%,grad_rel_err:<0.05"
    grown = [json.loads(line) for line in (reference / RUNS_FILE).read_text().splitlines()]
    assert len(grown) == 36 and {rec["status"] for rec in grown} == {"ok"}
    assert all(rec["peak_mem_bytes"] > 0 for rec in grown)
    for rec in grown:
        if rec["gradient"] == "adjoint":
            rec["peak_mem_bytes"] = int(rec["peak_mem_bytes"] * 1.2)
    current = tmp_path / "current"
    for rec in grown:
        append_record(current, rec)
    result = compare_paths(reference, current, fail_on)
    adjoint_runs = sum(rec["gradient"] == "adjoint" for rec in grown)
    assert len(result.regressions) == adjoint_runs
    assert all("gradient=adjoint" in line and "peak_mem_bytes" in line
               for line in result.regressions)


# ---- pytest-benchmark JSON --------------------------------------------------------------------
def test_benchmark_json_gates_stats_and_extra_info(tmp_path):
    base = bench_json(tmp_path, "base.json", {
        "test_x[adjoint]": {"peak_mem_bytes": 1000, "adjoint_direct_mem_ratio": 0.2},
        "test_x[direct]": {"peak_mem_bytes": 5000, "median": 0.010},
    })
    cur = bench_json(tmp_path, "cur.json", {
        "test_x[adjoint]": {"peak_mem_bytes": 1000, "adjoint_direct_mem_ratio": 0.3},
        "test_x[direct]": {"peak_mem_bytes": 5000, "median": 0.020},
    })
    result = compare_paths(base, cur, "adjoint_direct_mem_ratio:+5%,median:+25%")
    assert [line.split(":")[0] for line in result.regressions] == ["test_x[adjoint]",
                                                                   "test_x[direct]"]
    assert "adjoint_direct_mem_ratio 0.2 -> 0.3 (+50.0%)" in result.regressions[0]
    assert set(result.table["run"]) == {"test_x[adjoint]", "test_x[direct]"}


def test_benchmark_json_from_another_machine_is_a_warning(tmp_path):
    base = bench_json(tmp_path, "base.json", {"t": {"peak_mem_bytes": 1}}, cpu="CPU A")
    cur = bench_json(tmp_path, "cur.json", {"t": {"peak_mem_bytes": 1}}, cpu="CPU B")
    (warning,) = compare_paths(base, cur, "peak_mem_bytes:+10%").warnings
    assert "different machines" in warning


def test_extra_info_named_like_a_statistic_is_prefixed(tmp_path):
    path = bench_json(tmp_path, "b.json", {"t": {"mean": 3}})
    assert read_results(path).metrics["benchmarks/bench_x.py::t"]["extra_info.mean"] == 3


def test_a_folder_and_a_json_file_do_not_compare(tmp_path):
    base = folder(tmp_path, "base", record("a"))
    cur = bench_json(tmp_path, "cur.json", {"a": {}})
    with pytest.raises(ValueError, match="cannot compare harness results"):
        compare_paths(base, cur)


def test_a_json_file_that_is_not_pytest_benchmark_output(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a pytest-benchmark JSON file"):
        read_results(path)


# ---- the command line ---------------------------------------------------------------------------
def test_cli_exit_codes(tmp_path, capsys):
    base = folder(tmp_path, "base", record("a"))
    worse = folder(tmp_path, "worse", record("a", peak_mem_bytes=2_000_000))
    assert main(["compare", str(base), str(base), "--fail-on", "peak_mem_bytes:+10%"]) == 0
    assert main(["compare", str(base), str(worse), "--fail-on", "peak_mem_bytes:+10%",
                 "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "| run " in out and "1 regression(s):\n- a: peak_mem_bytes" in out
    for argv, message in [
        ([str(base), str(tmp_path / "nothing")], "no results at"),
        ([str(base), str(worse), "--fail-on", "peak_mem_bytes+10%"], "malformed --fail-on"),
        ([str(base), str(worse), "--fail-on", "peak:+10%"], "unknown metric(s) in --fail-on"),
    ]:
        assert main(["compare", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"fdebench: error: {message}") and err.count("\n") == 1


def test_cli_exit_status_of_the_process(tmp_path):
    base = folder(tmp_path, "base", record("a"))
    worse = folder(tmp_path, "worse", record("a", grad_rel_err=1e-3))
    proc = subprocess.run(
        [sys.executable, "-m", "fdebench.cli", "compare", str(base), str(worse),
         "--fail-on", "grad_rel_err:<1e-8"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "- a: grad_rel_err 1e-12 -> 0.001" in proc.stdout
