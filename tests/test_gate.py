"""Each regression gate can fail: inject a memory, a time and a fidelity regression into the
engine, measure with the gate's own functions (``benchmarks.common.gate``) and compare with the
gate's
own thresholds (``FAIL_ON``) through ``fdebench compare``, as ``.ci/gate`` does."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from benchmarks.common import gate
from benchmarks.common.task_step import task_config
from fdebench.cli import main
from fdebench.engine import gradients

RUN = "test_gate_engine[euler-adjoint]"


def gate_json(path: Path, extra_info: dict) -> Path:
    """A pytest-benchmark JSON file holding the gate's euler/adjoint case only."""
    path.write_text(json.dumps({"benchmarks": [
        {"name": RUN, "fullname": f"benchmarks/bench_gate.py::{RUN}",
         "stats": {"median": 0.0}, "extra_info": extra_info},
    ]}))
    return path


def run_gate(tmp_path: Path, baseline: dict, current: dict, capsys) -> tuple[int, list[str]]:
    """``fdebench compare BASELINE CURRENT --fail-on FAIL_ON``: exit code, regression lines.

    Only ``FAIL_ON``'s items for this case's metrics (another metric is an unknown-metric error).
    """
    fail_on = ",".join(item for item in gate.FAIL_ON.split(",")
                       if item.split(":")[0] in baseline)
    code = main(["compare", str(gate_json(tmp_path / "base.json", baseline)),
                 str(gate_json(tmp_path / "current.json", current)), "--fail-on", fail_on])
    out = capsys.readouterr().out
    print(out)  # shown with -s, and on failure
    return code, [line[2:] for line in out.splitlines() if line.startswith("- ")]


@pytest.fixture(scope="module", autouse=True)
def gate_settings():
    """The gate's settings: the CPU, one torch thread (as ``.ci/gate``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FDEBENCH_BENCH_DEVICE", "cpu")
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def healthy(gate_settings) -> dict:
    """The healthy build's measurements of the euler/adjoint case (the baseline)."""
    return gate.engine_metrics("euler", "adjoint")


def test_a_healthy_build_passes(tmp_path, healthy, capsys):
    code, regressions = run_gate(tmp_path, healthy, gate.engine_metrics("euler", "adjoint"),
                                 capsys)
    assert (code, regressions) == (0, [])


class GraphKeepingAdjoint(gradients.DirectMode):
    """A broken adjoint: keeps every step's autograd graph, like direct."""

    name = "adjoint"


def test_memory_gate_fails_on_an_adjoint_that_keeps_the_graph(tmp_path, healthy, capsys,
                                                              monkeypatch):
    monkeypatch.setitem(gradients.GRADIENTS, "adjoint", GraphKeepingAdjoint)
    leaky = gate.engine_metrics("euler", "adjoint", rounds=3)
    code, regressions = run_gate(tmp_path, healthy, leaky, capsys)
    assert code == 1
    failed = {line.split()[1] for line in regressions}
    assert {"peak_mem_bytes", "adjoint_direct_mem_ratio"} <= failed, regressions
    assert leaky["peak_mem_bytes"] > 3 * healthy["peak_mem_bytes"]


def test_time_gate_fails_on_a_per_step_sleep(tmp_path, healthy, capsys, monkeypatch):
    vjp = gradients.AdjointMode.vjp

    def slow_vjp(self, *args, **kwargs):
        time.sleep(0.002)
        return vjp(self, *args, **kwargs)

    monkeypatch.setattr(gradients.AdjointMode, "vjp", slow_vjp)
    slow = gate.engine_metrics("euler", "adjoint", rounds=5)
    code, regressions = run_gate(tmp_path, healthy, slow, capsys)
    assert code == 1
    assert [line.split()[1] for line in regressions] == ["adjoint_direct_time_ratio"]


def test_fidelity_gate_fails_on_a_perturbed_gradient(tmp_path, healthy, capsys, monkeypatch):
    vjp = gradients.AdjointMode.vjp

    def perturbed_vjp(self, *args, **kwargs):
        return [None if g is None else g * (1 + 1e-6) for g in vjp(self, *args, **kwargs)]

    monkeypatch.setattr(gradients.AdjointMode, "vjp", perturbed_vjp)
    wrong = gate.engine_metrics("euler", "adjoint", rounds=3)
    code, regressions = run_gate(tmp_path, healthy, wrong, capsys)
    assert code == 1
    assert [line.split()[1] for line in regressions] == ["grad_rel_err"]
    assert wrong["grad_rel_err"] > 1e-8


@pytest.mark.parametrize("case", list(gate.TASK_CASES))
def test_every_task_case_resolves(case):
    cls, config = task_config(case, "adjoint")
    assert config["gradient"] == "adjoint" and config["n_steps"] >= 1
    assert cls.skip(config) is None


def test_task_step_measurements():
    info = gate.task_metrics("synthetic", "adjoint", rounds=2)
    assert info["nfe_forward"] == info["nfe_backward"] == 20
    assert 0 < info["adjoint_direct_mem_ratio"] < 1
    assert info["grad_rel_err"] < 1e-6 and info["adjoint_direct_time_ratio"] > 0


@pytest.mark.slow
def test_long_horizon_gate_fails_on_a_quadratic_history(tmp_path, capsys):
    """The stepwise history (one pass over the buffer per step: O(N^2)) in place of the fast
    one fails the long-horizon case's time ratio."""
    healthy = gate.long_horizon_metrics(rounds=3)
    quadratic = gate.long_horizon_metrics(rounds=3, history="stepwise")
    code, regressions = run_gate(tmp_path, healthy, quadratic, capsys)
    assert code == 1
    assert "fractional_alpha1_time_ratio" in {line.split()[1] for line in regressions}
