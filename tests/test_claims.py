"""The "Claims" report section on synthetic records: every verdict branch of every claim."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from fdebench.report.claims import (
    ACCURACY_TOLERANCE,
    cell_verdicts,
    claim_values,
    claims_section,
    overall_verdict,
)

MIB = 2**20


def record(task: str, gradient: str, seed: int = 0, alpha: float = 0.5, *, mem: float = 100,
           time: float = 1.0, **metrics: float) -> dict:
    """A stored record as `fdebench.results.load` returns it (flat, metrics as columns)."""
    names = list(metrics) or ["test_accuracy"]
    directions = {n: "higher" if n == "test_accuracy" else "lower" for n in names}
    return {"suite": "s", "task": task, "gradient": gradient, "seed": seed, "alpha": alpha,
            "status": "ok", "run_id": f"{task}[{alpha},{gradient},{seed}]",
            "id_keys": ["alpha", "gradient", "seed"], "metric_names": names,
            "metric_directions": directions,
            "peak_mem_bytes": mem * MIB, "time_per_iter_s": time,
            **({"test_accuracy": 0.9} | metrics)}


def frame(*records: dict) -> pd.DataFrame:
    return pd.DataFrame(list(records))


def verdict(runs: pd.DataFrame, claim: str) -> tuple[pd.DataFrame, str]:
    cells = cell_verdicts(claim_values(runs))
    cells = cells[cells["claim"] == claim]
    return cells, overall_verdict(cells)


# ---- memory: ratio = mode / direct, claimed 0.33-0.67, lower is better -------------------------
@pytest.mark.parametrize(
    ("mem", "cell", "overall"),
    [(50, "holds", "holds"),
     (10, "better than claimed", "holds, better than claimed for every task and mode"),
     (90, "does not hold", "does not hold")],
    ids=["within", "better", "worse"],
)
def test_memory_claim_branches(mem, cell, overall):
    runs = frame(record("t", "direct", mem=100), record("t", "paper", mem=mem))
    cells, text = verdict(runs, "memory")
    assert list(cells["verdict"]) == [cell] and text == overall


def test_memory_holds_only_for_some_cells_and_names_them():
    runs = frame(record("a", "direct", mem=100), record("a", "paper", mem=50),
                 record("a", "adjoint", mem=10), record("b", "direct", mem=100),
                 record("b", "paper", mem=95))
    cells, text = verdict(runs, "memory")
    assert text == ("holds only for a/adjoint, a/paper (better than claimed for a/adjoint)")
    assert dict(zip(cells["task"] + "/" + cells["gradient"], cells["verdict"], strict=True)) \
        == {"a/adjoint": "better than claimed", "a/paper": "holds", "b/paper": "does not hold"}


def test_ratios_pair_runs_of_the_same_configuration_and_seed():
    """Direct's memory differs by alpha and seed: each mode run is divided by its own pair."""
    runs = frame(record("t", "direct", 0, 0.5, mem=100), record("t", "direct", 1, 0.5, mem=200),
                 record("t", "direct", 0, 0.9, mem=400),
                 record("t", "adjoint", 0, 0.5, mem=50), record("t", "adjoint", 1, 0.5, mem=60),
                 record("t", "adjoint", 0, 0.9, mem=200))
    values = claim_values(runs)
    memory = sorted(values.loc[values["claim"] == "memory", "value"])
    assert memory == pytest.approx([0.3, 0.5, 0.5])
    cells, _ = verdict(runs, "memory")  # 0.3 is better than claimed, 0.5 within: it holds
    assert list(cells["verdict"]) == ["holds"] and cells["n"].iloc[0] == 3


def test_a_cell_with_worse_and_other_values_holds_in_part():
    runs = frame(record("t", "direct", 0, mem=100), record("t", "direct", 1, mem=100),
                 record("t", "paper", 0, mem=50), record("t", "paper", 1, mem=80))
    cells, text = verdict(runs, "memory")
    assert list(cells["verdict"]) == ["holds in 1 of 2"] and text == "does not hold"


# ---- speed: speed-up = direct time / mode time, claimed 2-3x, higher is better -----------------
@pytest.mark.parametrize(
    ("time", "cell"),
    [(0.4, "holds"), (0.2, "better than claimed"), (1.3, "does not hold")],
    ids=["2.5x", "5x", "0.77x"],
)
def test_speed_claim_branches(time, cell):
    runs = frame(record("t", "direct", time=1.0), record("t", "continuous", time=time))
    cells, _ = verdict(runs, "speed")
    assert list(cells["verdict"]) == [cell]
    assert claim_values(runs).query("claim == 'speed'")["value"].iloc[0] == \
        pytest.approx(1.0 / time)


# ---- accuracy: headline metric against direct's, with a tolerance ------------------------------
@pytest.mark.parametrize(
    ("accuracies", "cell"),
    [((0.905, 0.915), "holds"),  # mean 0.91, direct 0.91
     ((0.70, 0.72), "does not hold"),
     ((0.99, 0.99), "better than claimed")],
    ids=["comparable", "worse", "better"],
)
def test_accuracy_claim_branches(accuracies, cell):
    runs = frame(record("img", "direct", 0, test_accuracy=0.90),
                 record("img", "direct", 1, test_accuracy=0.92),
                 *(record("img", "paper", s, test_accuracy=a) for s, a in enumerate(accuracies)))
    cells, _ = verdict(runs, "accuracy")
    assert list(cells["verdict"]) == [cell]


def test_accuracy_tolerance_is_one_point_or_the_seeds_spread():
    # direct identical over seeds (no spread): 1.5 points lower is not comparable
    tight = frame(record("i", "direct", 0, test_accuracy=0.9),
                  record("i", "direct", 1, test_accuracy=0.9),
                  record("i", "adjoint", 0, test_accuracy=0.885),
                  record("i", "adjoint", 1, test_accuracy=0.885))
    assert list(verdict(tight, "accuracy")[0]["verdict"]) == ["does not hold"]
    row = claim_values(tight).query("claim == 'accuracy'").iloc[0]
    assert row["tolerance"] == ACCURACY_TOLERANCE and row["value"] == pytest.approx(-0.015)
    # direct spread over seeds: std of (0.88, 0.92) = 0.028 > 1 point: the same gap is fine
    loose = frame(record("i", "direct", 0, test_accuracy=0.88),
                  record("i", "direct", 1, test_accuracy=0.92),
                  record("i", "adjoint", 0, test_accuracy=0.885),
                  record("i", "adjoint", 1, test_accuracy=0.885))
    assert list(verdict(loose, "accuracy")[0]["verdict"]) == ["holds"]


@pytest.mark.parametrize(
    ("mse", "cell"),
    [(1.05, "holds"), (1.5, "does not hold"), (0.5, "better than claimed")],
    ids=["within-10%", "worse", "better"],
)
def test_error_metrics_use_a_relative_tolerance_and_lower_is_better(mse, cell):
    runs = frame(record("lv", "direct", test_mse=1.0), record("lv", "paper", test_mse=mse))
    cells, _ = verdict(runs, "accuracy")
    assert list(cells["verdict"]) == [cell]
    assert "test_mse" in cells["measured"].iloc[0]


def test_the_headline_metric_is_the_first_both_modes_have():
    """lotka_volterra's neural model has no param_rel_err: its train_mse is compared."""
    direct = record("lv", "direct", param_rel_err=float("nan"), train_mse=2.0)
    mode = record("lv", "adjoint", param_rel_err=float("nan"), train_mse=2.0)
    values = claim_values(frame(direct, mode)).query("claim == 'accuracy'")
    assert list(values["metric"]) == ["train_mse"]


# ---- the section --------------------------------------------------------------------------------
def test_no_section_without_direct_and_another_mode():
    assert claims_section(frame(record("t", "direct"), record("t", "direct", 1))) == []
    assert claims_section(frame(record("t", "adjoint"))) == []


def test_section_states_each_claim_and_its_verdict():
    runs = frame(record("t", "direct", mem=100, time=1.0),
                 record("t", "paper", mem=50, time=2.0, test_accuracy=0.9))
    text = "\n".join(claims_section(runs))
    assert text.startswith("## Claims")
    for phrase in ("33-67% of direct's memory", "2-3x faster", "accuracy comparable to direct",
                   r"\| holds +\|", r"\| does not hold +\|", "0.50x", r"\| 0.50 +\|"):
        assert re.search(phrase, text), phrase


# ---- baselines, cost-only runs, declared directions -------------------------------------------
def test_every_mode_is_checked_against_each_direct_baseline():
    """textbook direct (the paper's baseline) uses 3x fdebench direct's memory and 4x its time:
    the same adjoint run holds the memory claim against one and beats both against the other."""
    textbook = {"engine": "textbook"}
    runs = frame(record("t", "direct", mem=100, time=1.0),
                 record("t", "direct", mem=300, time=4.0) | textbook
                 | {"run_id": "t[textbook]"},
                 record("t", "adjoint", mem=50, time=1.6))
    runs["engine"] = runs["engine"].fillna("fdebench")
    values = claim_values(runs)
    memory = values.query("claim == 'memory'").set_index("baseline")["value"]
    assert memory.to_dict() == pytest.approx({"fdebench direct": 0.5, "textbook direct": 1 / 6})
    speed = values.query("claim == 'speed'").set_index("baseline")["value"]
    assert speed.to_dict() == pytest.approx({"fdebench direct": 1 / 1.6, "textbook direct": 2.5})
    cells = cell_verdicts(values)
    verdicts = dict(zip(cells["claim"] + "/" + cells["baseline"], cells["verdict"], strict=True))
    assert verdicts["memory/fdebench direct"] == "holds"
    assert verdicts["memory/textbook direct"] == "better than claimed"
    assert verdicts["speed/fdebench direct"] == "does not hold"
    assert verdicts["speed/textbook direct"] == "holds"
    text = "\n".join(claims_section(runs))
    assert re.search(r"2-3x faster[^\n]*\| textbook direct *\|[^\n]*\| holds *\|", text)
    assert re.search(r"2-3x faster[^\n]*\| fdebench direct *\|[^\n]*\| does not hold *\|", text)


def test_a_baseline_of_another_engine_is_not_compared_unless_it_is_a_baseline_engine():
    runs = frame(record("t", "direct", mem=100) | {"engine": "torchdiffeq"},
                 record("t", "adjoint", mem=50) | {"engine": "fdebench"})
    assert claim_values(runs).empty


def test_cost_only_runs_count_for_memory_and_speed_not_accuracy():
    cost = {"cost_only": True}
    runs = frame(record("t", "direct", 0, mem=100) | cost,
                 record("t", "adjoint", 0, mem=20, test_accuracy=0.5) | cost,
                 record("t", "direct", 1, mem=100, test_accuracy=0.9),
                 record("t", "adjoint", 1, mem=50, test_accuracy=0.9))
    values = claim_values(runs)
    assert sorted(values.query("claim == 'memory'")["cost_only"]) == [False, True]
    accuracy = values.query("claim == 'accuracy'")
    assert len(accuracy) == 1 and not accuracy["cost_only"].iloc[0]  # trained seed 1 only
    assert accuracy["value"].iloc[0] == pytest.approx(0.0)
    cells = cell_verdicts(values).set_index("claim")
    assert cells.loc["memory", "runs"] == "1 cost-only, 1 trained"
    assert cells.loc["accuracy", "runs"] == "1 trained"


def test_metric_meaning_comes_from_the_declaration_not_the_name():
    # a metric called *accuracy* declared lower-is-better is compared as an error (relative
    # tolerance, lower wins); one whose direction is undeclared is never compared
    runs = frame(record("t", "direct", test_accuracy=0.5) | {
                     "metric_directions": {"test_accuracy": "lower"}},
                 record("t", "adjoint", test_accuracy=0.4) | {
                     "metric_directions": {"test_accuracy": "lower"}})
    cells, _ = verdict(runs, "accuracy")
    assert list(cells["verdict"]) == ["better than claimed"]
    undeclared = runs.drop(columns="metric_directions")
    assert verdict(undeclared, "accuracy")[0].empty
    counted = frame(record("t", "direct", score=0.90) | {"metric_directions": {"score": None}},
                    record("t", "adjoint", score=0.10) | {"metric_directions": {"score": None}})
    assert verdict(counted, "accuracy")[0].empty  # a declared count has no direction


def test_declarations_are_read_from_loaded_records(tmp_path):
    """`fdebench.results.load` flattens the declared mappings into `metric_directions.<metric>`
    columns: the claims read them there as they do the dicts of a hand-built frame."""
    import json

    from fdebench.results import load

    rows = [record("img", "direct", 0, test_accuracy=0.90), record("img", "paper", 0,
                                                                   test_accuracy=0.70)]
    (tmp_path / "runs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = load(tmp_path / "runs.jsonl")
    assert "metric_directions.test_accuracy" in loaded.columns
    cells, _ = verdict(loaded, "accuracy")
    assert list(cells["verdict"]) == ["does not hold"]  # 20 points lower: declared higher
