"""The command line as a Unix tool: bundled suites, refusals with exit 2, tracebacks for bugs,
interrupts, and the engine self-check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fdebench.engine.schemes.product as product
from fdebench import selfcheck
from fdebench.cli import main
from fdebench.runner import bundled_suites, find_suite

QUICK_SUITE = """\
name: tiny
device: cuda
measure: {warmup_iters: 0, time_limit_s: 30}
defaults: {alpha: 1.0, step_size: 0.05}
tasks:
  - task: freefall
    iters: 1
"""


def test_bundled_suites_are_found_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no suites/ folder here
    assert {"quickstart", "scaling", "planetoid"} <= set(bundled_suites())
    assert find_suite("quickstart") == bundled_suites()["quickstart"]
    assert find_suite("suites/scaling.yaml") == bundled_suites()["scaling"]
    assert main(["suites"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] in bundled_suites() and "quickstart" in out
    assert main(["run", "--dry-run"]) == 0  # the default: the bundled quickstart
    assert "freefall[" in capsys.readouterr().out


def test_an_unknown_suite_lists_the_bundled_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "quickstrat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no suite file quickstrat" in err[0] and "quickstart" in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("where", ["option", "suite"])
def test_cuda_without_cuda_is_refused_up_front(tmp_path, capsys, where):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(QUICK_SUITE if where == "suite" else QUICK_SUITE.replace("cuda", "cpu"))
    extra = ["--device", "cuda"] if where == "option" else []
    code = main(["run", str(suite), "--results-dir", str(tmp_path / "results"),
                 "--reports-dir", str(tmp_path / "reports"), "--quiet", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "device 'cuda'" in err[0] and "--device cpu" in err[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    import fdebench.runner

    def broken(*args, **kwargs):
        raise TypeError("an internal bug")

    monkeypatch.setattr(fdebench.runner, "run_suite", broken)
    suite = tmp_path / "tiny.yaml"
    suite.write_text(QUICK_SUITE.replace("cuda", "cpu"))
    with pytest.raises(TypeError, match="an internal bug"):
        main(["run", str(suite), "--quiet"])


@pytest.mark.parametrize(("command", "speaks_of_runs"), [("run", True), ("check", False)])
def test_interrupt_message(monkeypatch, tmp_path, capsys, command, speaks_of_runs):
    import fdebench.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fdebench.runner, "run_suite", interrupted)
    monkeypatch.setattr(selfcheck, "run_check", interrupted)
    suite = tmp_path / "tiny.yaml"
    suite.write_text(QUICK_SUITE.replace("cuda", "cpu"))
    args = ["run", str(suite), "--quiet"] if command == "run" else ["check"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert ("finished runs are recorded" in err) == speaks_of_runs


@pytest.mark.parametrize("steps", ["5", "abc", "1000000"])
def test_check_validates_steps(steps, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "--steps", steps])
    assert info.value.code == 2
    assert "--steps" in capsys.readouterr().err


def test_check_passes_on_a_correct_engine(capsys):
    assert main(["check", "--steps", "32", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "euler" in out and "rk4" in out


def test_check_catches_wrong_weights(monkeypatch, capsys):
    """Euler weights multiplied by 3 give converging-looking gradients that all agree with
    each other: only the forward accuracy against Mittag-Leffler exposes them."""
    right = product.product_rectangle_weights
    monkeypatch.setattr(product, "product_rectangle_weights",
                        lambda *args: 3 * right(*args))
    assert main(["check", "--steps", "32"]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines()
              if line.endswith("FAIL") or "FAIL (" in line]
    assert failed and all(line.split()[0] in ("euler", "abm") for line in failed)
    assert any(line.split()[0] == "euler" for line in failed)


def test_check_rows_report_the_expected_orders():
    rows = selfcheck.run_check(alphas=(0.5,), n_steps=32)
    expected = {"euler": 1.0, "l1": 1.0, "gl": 1.0, "abm": 1.5}
    assert {r.method: r.expected_order for r in rows} == expected
    for r in rows:
        assert abs(r.observed_order - r.expected_order) <= selfcheck.ORDER_MARGIN


def test_check_device_that_is_not_there_is_refused(capsys):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    assert main(["check", "--device", "cuda"]) == 2
    assert "device 'cuda'" in capsys.readouterr().err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "fdebench.cli", "--help"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parent)
    assert "suites" in out.stdout and "check" in out.stdout
