"""The markdown report: tables with the gradient modes side by side, failures, figures."""

from __future__ import annotations

import ast
import re
import statistics
import sys
from pathlib import Path

import pytest

import fdebench.report
from fdebench.report import growth_exponent, write_report
from fdebench.report.series import scaling_panels
from fdebench.results import append_record, load

MIB = 2**20
PNG = b"\x89PNG\r\n\x1a\n"
STEPS = (10, 20, 40, 80)
SEEDS = (0, 1)
#: decay task: peak memory c * N^k * (1 + s * seed) and time per iteration c * N^k per mode
MEMORY = {"direct": (1000.0, 2.0, 0.1), "adjoint": (5000.0, 1.0, 0.2),
          "checkpoint": (3000.0, 1.5, 0.1)}
TIME = {"direct": (1e-4, 1.0), "adjoint": (3e-4, 1.2), "checkpoint": (2e-4, 1.1)}
#: gradient error against the fine reference, c * N^-p per mode (p: the order)
FINE = {"direct": (0.5, 1.0), "adjoint": (0.5, 1.0), "checkpoint": (2.0, 2.0)}
ENV = {"fdebench_version": "0.1.0", "git_commit": "deadbeef", "torch_version": "2.5.1",
       "python": "3.11.2", "device_name": "Test CPU", "cpu": "x86_64", "threads": 2,
       "hostname": "h"}


def decay_memory(mode: str, n: int, seed: int) -> float:
    c, k, s = MEMORY[mode]
    return c * n**k * (1 + s * seed)


def decay_time(mode: str, n: int, seed: int) -> float:
    c, k = TIME[mode]
    return c * n**k * (1 + 0.05 * seed)


def decay_runs() -> list[dict]:
    """3 modes x 4 step counts x 2 seeds, all ok, plus one oom (seed 2) with bogus numbers."""
    runs = []
    for n in STEPS:
        for mode in MEMORY:
            for seed in SEEDS:
                runs.append({
                    "run_id": f"decay[gradient={mode},seed={seed},step_size={1 / n:g}]",
                    "task": "decay", "gradient": mode, "seed": seed, "alpha": 0.5,
                    "method": "euler", "step_size": 1 / n, "t_end": 1.0, "n_steps": n,
                    "status": "ok", "peak_mem_bytes": decay_memory(mode, n, seed),
                    "time_per_iter_s": decay_time(mode, n, seed),
                    "grad_rel_err": None if mode == "direct" else 1e-8 * (seed + 1),
                    "grad_rel_err_fine": FINE[mode][0] * n ** -FINE[mode][1],
                    "test_mse": 0.01 * (seed + 1),
                    "param_rel_err": 0.1, "metric_names": ["test_mse", "param_rel_err"],
                    "train_curve": [1 / (i + 1) for i in range(10)], "wall_s": 1.0,
                })
    runs.append({"run_id": "decay[gradient=adjoint,seed=2,step_size=0.0125]", "task": "decay",
                 "gradient": "adjoint", "seed": 2, "alpha": 0.5, "method": "euler",
                 "step_size": 1 / 80, "t_end": 1.0, "n_steps": 80, "status": "oom",
                 "message": "CUDA out of memory", "peak_mem_bytes": 1e15,
                 "time_per_iter_s": 1e6, "test_mse": 1e9})
    return runs


def spiral_runs() -> list[dict]:
    """Fixed N, a task parameter (noise) varies; one error and one timeout."""
    runs = []
    for noise in (0.0, 0.1):
        for mode, memory, time in (("direct", 40 * MIB, 0.010), ("adjoint", 10 * MIB, 0.025)):
            for seed in SEEDS:
                runs.append({
                    "run_id": f"spiral[gradient={mode},noise={noise},seed={seed}]",
                    "task": "spiral", "gradient": mode, "seed": seed, "noise": noise,
                    "alpha": 0.7, "step_size": 0.02, "t_end": 1.0, "n_steps": 50,
                    "status": "ok", "peak_mem_bytes": memory * (1 + noise),
                    "time_per_iter_s": time, "test_accuracy": 0.9 - noise,
                    "metric_names": ["test_accuracy"], "train_curve": [2.0, 1.0, 0.5],
                })
    runs.append({"run_id": "spiral[gradient=checkpoint,noise=0.0,seed=0]", "task": "spiral",
                 "gradient": "checkpoint", "status": "error", "message": "boom | bad value",
                 "traceback": "Traceback ..."})
    runs.append({"run_id": "spiral[gradient=checkpoint,noise=0.1,seed=0]", "task": "spiral",
                 "gradient": "checkpoint", "status": "timeout", "message": "exceeded 60 s"})
    return runs


def write_suite(folder: Path, records: list[dict], suite: str = "synth") -> Path:
    for record in records:
        append_record(folder / suite / "runs.jsonl", {"suite": suite, "env": ENV} | record)
    return folder / suite


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    """The report of the synthetic suite (written once: figures take a second each)."""
    root = tmp_path_factory.mktemp("report")
    results = write_suite(root / "results", decay_runs() + spiral_runs())
    readme = write_report(results, root / "reports")
    return readme, readme.read_text()


def table_after(text: str, heading: str, first_column: str) -> list[dict[str, str]]:
    """The rows of the first markdown table after ``heading`` whose header starts with
    ``first_column``."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("|") and line.strip("| ").startswith(first_column))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, row, strict=True)) for row in body]


def find(rows: list[dict[str, str]], **match: str) -> dict[str, str]:
    (row,) = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return row


def number(cell: str) -> float:
    return float(cell.rstrip("×"))


def test_title_counts_and_environment(report):
    readme, text = report
    assert readme.name == "README.md" and readme.parent.name == "synth"
    assert text.startswith("# fdebench report: suite `synth`")
    ok = len(STEPS) * len(MEMORY) * len(SEEDS) + 2 * 2 * len(SEEDS)
    assert f"{ok + 3} runs: {ok} ok, 1 oom, 1 timeout, 1 error." in text
    for value in ("Test CPU", "2.5.1", "x86_64", "deadbeef", "0.1.0"):
        assert value in text


@pytest.mark.parametrize("n", STEPS, ids=[f"N{n}" for n in STEPS])
@pytest.mark.parametrize("mode", ["adjoint", "checkpoint"])
def test_decay_ratios_to_direct(report, mode, n):
    rows = table_after(report[1], "## Task `decay`", "n_steps")
    row = find(rows, n_steps=str(n), gradient=mode)
    memory = statistics.mean(decay_memory(mode, n, s) for s in SEEDS)
    direct = statistics.mean(decay_memory("direct", n, s) for s in SEEDS)
    assert number(row["mem / direct"]) == pytest.approx(memory / direct, rel=0.06)
    assert number(row["peak mem (MiB)"]) == pytest.approx(memory / MIB, rel=0.01)
    time = statistics.mean(decay_time(mode, n, s) for s in SEEDS)
    direct_time = statistics.mean(decay_time("direct", n, s) for s in SEEDS)
    assert number(row["time / direct"]) == pytest.approx(time / direct_time, rel=0.01)
    assert number(row["time/iter (ms)"]) == pytest.approx(time * 1e3, rel=0.01)


def test_decay_rows_order_metrics_and_failed_seed(report):
    rows = table_after(report[1], "## Task `decay`", "n_steps")
    assert [r["gradient"] for r in rows[:3]] == ["direct", "adjoint", "checkpoint"]
    assert [r["n_steps"] for r in rows[::3]] == [str(n) for n in STEPS]
    assert all(r["mem / direct"] == "1.00×" for r in rows if r["gradient"] == "direct")
    mean, std = (float(x) for x in rows[0]["test_mse"].split("±"))
    assert (mean, std) == pytest.approx((0.015, statistics.stdev([0.01, 0.02])), rel=0.01)
    assert rows[0]["grad rel err (max)"] == "— (reference)"  # direct: the reference, no 0
    assert rows[1]["grad rel err (max)"] == "2.00e-08"
    assert "alpha" not in rows[0]  # constant within the task: not a config column
    # the oom run (seed 2) is counted but its numbers are left out of the means
    row = find(rows, n_steps="80", gradient="adjoint")
    assert row["ok / runs"] == "2/3"
    assert number(row["peak mem (MiB)"]) < 1


def test_spiral_task_parameter_is_a_config_column(report):
    rows = table_after(report[1], "## Task `spiral`", "noise")
    row = find(rows, noise="0.1", gradient="adjoint")
    assert number(row["mem / direct"]) == pytest.approx(0.25)
    assert number(row["time / direct"]) == pytest.approx(2.5)
    assert row["test_accuracy"] == "0.8 ± 0"
    assert "checkpoint" not in {r["gradient"] for r in rows}  # no ok checkpoint runs


def test_growth_exponents_table(report):
    rows = table_after(report[1], "## Task `decay`\n", "configuration")
    for mode, (_, k, _) in MEMORY.items():
        row = find(rows, gradient=mode)
        assert row["memory ~N^k"] == f"{k:.2f}"
        assert row["time/iter ~N^k"] == f"{TIME[mode][1]:.2f}"
        assert row["N"] == "10-80"


def test_legend_labels_carry_the_fitted_exponent(report):
    runs = load(report[0].parent.parent.parent / "results" / "synth")
    (panel,) = scaling_panels(runs[runs["task"] == "decay"], ["n_steps"], "peak_mem_bytes")
    assert [s.label for s in panel.series] == [
        "direct (~N^2.00)", "adjoint (~N^1.00)", "checkpoint (~N^1.50)"]


def test_gradient_error_orders_table_and_legends(report):
    rows = table_after(report[1], "### Gradient error vs number of steps", "configuration")
    for mode, (_, p) in FINE.items():
        row = find(rows, gradient=mode)
        assert row["order vs fine reference"] == f"{p:.2f}"
        assert row["N"] == "10-80"
    # against direct: the exact modes' error does not shrink (order 0); direct has none
    assert find(rows, gradient="adjoint")["order vs direct"] == "0.00"
    assert find(rows, gradient="direct")["order vs direct"] == ""
    from fdebench.report.series import error_panels

    runs = load(report[0].parent.parent.parent / "results" / "synth")
    (panel,) = error_panels(runs[runs["task"] == "decay"], ["n_steps"], "grad_rel_err_fine")
    assert [s.label for s in panel.series] == [
        "direct (order 1.00)", "adjoint (order 1.00)", "checkpoint (order 2.00)"]


def test_fine_error_column_and_claims_section(report):
    rows = table_after(report[1], "## Task `decay`", "n_steps")
    row = find(rows, n_steps="20", gradient="checkpoint")
    assert float(row["grad rel err fine (max)"]) == pytest.approx(2.0 / 20**2, rel=1e-2)
    assert float(find(rows, n_steps="20", gradient="direct")["grad rel err fine (max)"]) \
        == pytest.approx(0.5 / 20, rel=1e-2)
    claims = table_after(report[1], "## Claims", "claim")
    assert [r["claim"] for r in claims][:2] == [
        "the adjoint needs 33-67% of direct's memory", "the adjoint trains 2-3x faster than direct"]


def test_failed_runs_section(report):
    rows = table_after(report[1], "## Failed runs", "run_id")
    assert {r["run_id"]: (r["status"], r["message"]) for r in rows} == {
        "decay[gradient=adjoint,seed=2,step_size=0.0125]": ("oom", "CUDA out of memory"),
        "spiral[gradient=checkpoint,noise=0.0,seed=0]": ("error", r"boom \| bad value"),
        "spiral[gradient=checkpoint,noise=0.1,seed=0]": ("timeout", "exceeded 60 s"),
    }


def test_figures_are_pngs_linked_from_the_readme(report):
    readme, text = report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    expected = {f"decay_{kind}.png" for kind in
                ("memory_vs_steps", "time_vs_steps", "training_curves", "memory_vs_time",
                 "grad_rel_err_fine_vs_steps", "grad_rel_err_vs_steps", "claim_map_n_steps")}
    expected |= {"spiral_training_curves.png", "spiral_memory_vs_time.png"}
    assert set(links) == expected  # spiral has one N: no scaling figures
    for link in links:
        assert (readme.parent / link).read_bytes().startswith(PNG)
    assert sorted(p.name for p in readme.parent.glob("*.png")) == sorted(expected)


def test_growth_exponent():
    n = [10, 20, 40, 80, 160]
    assert growth_exponent(n, [3.0 * x**1.37 for x in n]) == pytest.approx(1.37)
    assert growth_exponent(n, [5.0] * 5) == pytest.approx(0.0, abs=1e-12)
    assert growth_exponent([10, 10], [1.0, 2.0]) is None
    assert growth_exponent([10, 20, 40], [0.0, 20.0, 40.0]) == pytest.approx(1.0)


def test_report_of_failed_runs_only(tmp_path):
    failed = [r for r in spiral_runs() if r["status"] != "ok"]
    readme = write_report(write_suite(tmp_path / "results", failed), tmp_path / "reports")
    text = readme.read_text()
    assert "2 runs: 1 timeout, 1 error." in text
    assert "No successful runs" in text
    assert len(table_after(text, "## Failed runs", "run_id")) == 2
    assert not list(readme.parent.glob("*.png"))


def test_several_suites_get_an_index(tmp_path):
    failed = [r for r in spiral_runs() if r["status"] != "ok"]
    write_suite(tmp_path / "results", failed[:1], suite="first")
    write_suite(tmp_path / "results", failed[1:], suite="second")
    index = write_report(tmp_path / "results", tmp_path / "reports")
    assert index == tmp_path / "reports" / "README.md"
    assert "(first/README.md)" in index.read_text()
    assert "(second/README.md)" in index.read_text()
    assert (tmp_path / "reports" / "second" / "README.md").is_file()


def test_report_uses_no_torch_and_only_results():
    allowed = {"numpy", "pandas", "matplotlib"} | set(sys.stdlib_module_names)
    package = Path(fdebench.report.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [(a.name, 0) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "", node.level)]
            else:
                continue
            for name, level in names:
                if level == 2:  # ..something: a sibling package of report/
                    assert name == "results", f"{path.name} imports ..{name}"
                elif level == 0:
                    assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_data_are_described_and_synthetic_data_flagged(tmp_path):
    runs = [r | {"data": "synthetic: random images (not real data)", "data_time_s": 2.0,
                 "setup_time_s": 3.0} for r in spiral_runs() if r["status"] == "ok"]
    runs += [r | {"task": "real", "run_id": "real" + r["run_id"].removeprefix("spiral"),
                  "data": "MNIST (torchvision)", "data_time_s": 0.0}
             for r in spiral_runs() if r["status"] == "ok"]
    text = write_report(write_suite(tmp_path / "results", runs), tmp_path / "r").read_text()
    spiral, real = text.split("## Task `real`")
    assert "**Synthetic data:** random images (not real data)." in spiral
    assert "outside the timed iterations: 2 s per run on average (whole setup: 3 s)" in spiral
    assert "Data: MNIST (torchvision)." in real and "Synthetic" not in real
    assert "outside the timed iterations" not in real
    assert "data" not in table_after(spiral, "## Task", "noise")[0]


def test_configuration_keys_come_from_the_records_not_the_run_ids():
    """A column that varies but is not among the records' ``id_keys`` never splits the rows of
    one configuration, and run ids are never parsed (here they hold no keys at all)."""
    import pandas as pd

    from fdebench.report.grouping import config_keys

    rows = []
    for i, (noise, mode) in enumerate([(0.0, "direct"), (0.0, "adjoint"), (0.1, "direct"),
                                       (0.1, "adjoint")]):
        rows.append({"run_id": f"run-{i}", "task": "t", "gradient": mode, "seed": 0,
                     "status": "ok", "alpha": 0.5, "noise": noise, "host_load": 0.1 * i,
                     "id_keys": ["alpha", "gradient", "noise", "seed"],
                     "config_keys": ["alpha", "gradient", "noise", "seed", "host_load"]})
    assert config_keys(pd.DataFrame(rows)) == ["noise"]


# ---- the trajectory floor, revolve + soe, the adjoint reference ------------------------------
FRONTIER_STEPS = (100, 400, 1600)
STATE = 128 * 64 * 4  # bytes of a 128 x 64 float32 state


def frontier_runs() -> list[dict]:
    """direct (3x the floor; none at N = 1600), adjoint (1.1x), revolve with history soe
    (a slowly growing few MiB): the records of a memory-frontier suite.  At N = 1600 the probe
    passed the work cap, so adjoint is the gradient reference there."""
    runs = []
    for n in FRONTIER_STEPS:
        floor = (n + 1) * STATE
        modes = {"adjoint": ("auto", 1.1 * floor), "revolve": ("soe", 4 * MIB * (n / 100) ** 0.3)}
        if n < 1600:
            modes = {"direct": ("auto", 3.0 * floor), **modes}
        reference = "adjoint" if n == 1600 else "direct"
        for mode, (history, peak) in modes.items():
            named = ["alpha", "gradient", "seed", "step_size"] + ["history"] * (history != "auto")
            runs.append({
                "run_id": f"frontier[gradient={mode},n={n}]", "task": "frontier",
                "gradient": mode, "history": history, "soe_tol": 1e-8, "seed": 0,
                "alpha": 0.5, "method": "euler", "step_size": 1 / n, "t_end": 1.0,
                "n_steps": n, "status": "ok", "peak_mem_bytes": peak, "state_bytes": STATE,
                "time_per_iter_s": 1e-3 * n, "cost_only": True, "id_keys": named,
                "grad_reference": reference,
                "grad_rel_err": None if mode == reference else 1e-10 if history == "soe"
                else 1e-7,
            })
    return runs


@pytest.fixture(scope="module")
def frontier(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("frontier")
    readme = write_report(write_suite(root / "results", frontier_runs(), "frontier"),
                          root / "reports")
    return readme, readme.read_text()


def test_history_soe_is_part_of_the_mode_not_a_configuration(frontier):
    rows = table_after(frontier[1], "## Task `frontier`", "n_steps")
    assert "history" not in rows[0] and "soe_tol" not in rows[0]
    assert [r["gradient"] for r in rows if r["n_steps"] == "400"] == [
        "direct", "adjoint", "revolve+soe"]
    revolve = find(rows, n_steps="400", gradient="revolve+soe")
    assert number(revolve["mem / direct"]) == pytest.approx(  # against direct at N = 400
        4 * 4**0.3 * MIB / (3 * 401 * STATE), abs=0.01)
    assert revolve["grad rel err (max)"] == "1.00e-10"


def test_the_reference_column_follows_grad_reference(frontier):
    rows = table_after(frontier[1], "## Task `frontier`", "n_steps")
    assert find(rows, n_steps="400", gradient="direct")["grad rel err (max)"] == "— (reference)"
    assert find(rows, n_steps="400", gradient="adjoint")["grad rel err (max)"] == "1.00e-07"
    assert find(rows, n_steps="1600", gradient="adjoint")["grad rel err (max)"] == \
        "— (reference)"
    assert "`grad rel err` at N = 1600 is measured against the exact `adjoint`" in frontier[1]
    assert "Modes labelled `+soe` run the compressed history" in frontier[1]


def test_peak_over_trajectory_floor_table(frontier):
    rows = table_after(frontier[1], "Trajectory floor: (N + 1) |y|", "configuration")
    by_mode = {r["gradient"]: r for r in rows}
    assert by_mode["direct"]["N"] == "400" and by_mode["adjoint"]["N"] == "1600"
    assert number(by_mode["direct"]["peak / floor"]) == pytest.approx(3.0)
    assert number(by_mode["adjoint"]["peak / floor"]) == pytest.approx(1.1)
    floor = 1601 * STATE / MIB
    assert number(by_mode["revolve+soe"]["floor (MiB)"]) == pytest.approx(floor, rel=1e-2)
    assert number(by_mode["revolve+soe"]["peak / floor"]) < 0.5
    assert ("Under the floor at the largest N: `revolve+soe`; at or above it (in some "
            "configuration): `direct`, `adjoint`.") in frontier[1]
    assert "grey: the trajectory floor (N+1)|y|" in frontier[1]


def test_the_memory_figure_draws_the_floor(monkeypatch, tmp_path):
    import pandas as pd

    from fdebench.report import figures
    from fdebench.report.grouping import with_modes
    from fdebench.report.series import FLOOR_LABEL

    runs = with_modes(pd.DataFrame(frontier_runs()))
    (panel,) = scaling_panels(runs, ["n_steps"], "peak_mem_bytes", 1 / MIB, floor=True)
    assert panel.floor.gradient == FLOOR_LABEL
    assert list(panel.floor.y) == pytest.approx([(n + 1) * STATE / MIB for n in FRONTIER_STEPS])
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda figure, path: drawn.append(figure) or path)
    figures.scaling_figure([panel], tmp_path / "m.png", "t", "MiB")
    lines = {line.get_label(): line for line in drawn[0].axes[0].get_lines()}
    assert FLOOR_LABEL in lines and lines[FLOOR_LABEL].get_color() == "0.55"
    assert {"revolve+soe", "direct", "adjoint"} <= {label.split(" ")[0] for label in lines}
    assert with_modes(runs).equals(runs)  # labelled once


def test_no_floor_without_state_bytes(report):
    assert "Trajectory floor" not in report[1] and "grey:" not in report[1]


def test_revolve_with_soe_is_in_the_claims():
    from fdebench.report.claims import claim_values

    values = claim_values(__import__("pandas").DataFrame(frontier_runs()))
    memory = values[(values["claim"] == "memory") & (values["gradient"] == "revolve+soe")]
    assert set(memory["n_steps"]) == {100, 400}  # where a direct baseline exists
    assert set(memory["baseline"]) == {"fdebench direct"}
    assert dict(zip(memory["n_steps"], memory["outcome"], strict=True)) == {
        100: "within", 400: "better"}  # 0.42 and 0.16 of direct's memory


def test_several_soe_tolerances_are_told_apart():
    import pandas as pd

    from fdebench.report.grouping import with_modes

    runs = pd.DataFrame([{"gradient": g, "history": h, "soe_tol": t} for g, h, t in (
        ("revolve", "soe", 1e-8), ("revolve", "soe", 1e-4), ("direct", "auto", 1e-4),
        ("adjoint", "stepwise", 1e-8), ("adjoint", None, None))])
    assert list(with_modes(runs)["gradient"]) == [
        "revolve+soe(1e-08)", "revolve+soe(0.0001)", "direct", "adjoint+stepwise", "adjoint"]
