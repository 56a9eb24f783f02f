"""Executors: the same runs and statuses one at a time, with ``--jobs`` and on a real Ray
instance, and the same guarantees (a process per run, the time limit, one writer, losses and
interrupts recorded, resume)."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import cuda_only
from runner_setup import ENV, records, use_fake_tasks, write

from fdebench.cli import main
from fdebench.errors import InputError
from fdebench.report import write_report
from fdebench.results import append_record
from fdebench.runner import SuiteError, load_suite, run_suite
from fdebench.runner.executors import gpu_slots
from fdebench.runner.executors.ray_executor import PRIVATE_RAY_ENV

# Every Ray process of these tests, the test cluster's and the drivers', listens on loopback
# only; Ray reads this when it is imported, so it is set before any test imports it.
for _key, _value in PRIVATE_RAY_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(autouse=True)
def fake_tasks(monkeypatch):
    use_fake_tasks(monkeypatch)


@pytest.fixture
def pids(tmp_path, monkeypatch) -> Path:
    """A folder where every fake run leaves its process id (forwarded to Ray runs too)."""
    folder = tmp_path / "pids"
    folder.mkdir()
    monkeypatch.setenv("FDEBENCH_TEST_PIDS", str(folder))
    return folder


def _alive(folder: Path) -> list[int]:
    """The runs that left their id in ``folder`` and still run."""
    alive = []
    for path in folder.iterdir():
        try:
            if psutil.Process(int(path.name)).status() != psutil.STATUS_ZOMBIE:
                alive.append(int(path.name))
        except psutil.NoSuchProcess:
            pass
    return alive


def _none_left(folder: Path, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while _alive(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _alive(folder)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MIX = """\
name: mix
device: cpu
measure: {warmup_iters: 0, time_limit_s: 120}
defaults: {t_end: 0.1, step_size: 0.05}
tasks:
  - task: fake_ok
    grid: {gradient: [direct, adjoint]}
  - task: fake_raise
  - task: fake_nan
  - task: fake_exit
"""
EXPECTED = {"fake_ok": "ok", "fake_raise": "error", "fake_nan": "nan", "fake_exit": "error"}


def _outcomes(results: Path) -> dict[str, str]:
    return {r["run_id"]: r["status"] for r in records(results, "mix")}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> dict[str, str]:
    """The mixed suite run one after another: run id -> status."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_fake_tasks(monkeypatch)
        folder = tmp_path_factory.mktemp("sequential")
        run_suite(load_suite(write(folder, MIX)), folder / "results", quiet=True)
    found = records(folder / "results", "mix")
    assert {r["task"]: r["status"] for r in found} == EXPECTED
    assert "exited with code 3" in next(r for r in found if r["task"] == "fake_exit")["message"]
    assert {(r["executor"], r["node"], r["concurrent_runs"]) for r in found} == {
        ("local", platform.node(), 1)}
    return _outcomes(folder / "results")


# ---- local -------------------------------------------------------------------------------
def test_local_jobs_give_the_same_runs_and_statuses(tmp_path, sequential):
    counts = run_suite(load_suite(write(tmp_path, MIX)), tmp_path / "r", quiet=True, jobs=2)
    assert _outcomes(tmp_path / "r") == sequential
    assert counts == {"ok": 2, "error": 2, "nan": 1}
    found = records(tmp_path / "r", "mix")
    assert {r["executor"] for r in found} == {"local"}
    assert max(r["concurrent_runs"] for r in found) == 2  # the first two start together
    # two runs at once: half the cores each as torch threads, unless the suite says otherwise
    half = max(len(os.sched_getaffinity(0)) // 2, 1)
    assert {r["env"]["threads"] for r in found if r["status"] == "ok"} == {half}


@cuda_only
def test_local_jobs_on_cuda_get_a_gpu_each(tmp_path):
    """As many runs at once as there are GPUs (at most 2), each on its own; more is refused."""
    from fdebench.runner.executors.local import visible_gpus

    suite = load_suite(write(tmp_path, MIX.replace("device: cpu", "device: cuda")))
    gpus = len(visible_gpus())
    if gpus < 2:
        with pytest.raises(InputError, match=r"--jobs 2 needs 2 GPUs \(1 per run"):
            run_suite(suite, tmp_path / "r", quiet=True, jobs=2)
    run_suite(suite, tmp_path / "r", quiet=True, jobs=min(gpus, 2))
    found = records(tmp_path / "r", "mix")
    assert {r["task"]: r["status"] for r in found} == EXPECTED
    ok = [r for r in found if r["status"] == "ok"]
    assert {r["device"] for r in ok} == {"cuda"}
    assert all(r["nvml_peak_used_bytes"] for r in ok)  # NVML found the pinned GPU


def test_gpu_slots_never_share_a_gpu():
    assert gpu_slots(["0", "1", "2", "3"], 4, 1) == ["0", "1", "2", "3"]
    assert gpu_slots(["4", "5", "6", "7"], 2, 2) == ["4,5", "6,7"]
    assert gpu_slots([], 3, 0) == [None, None, None]
    with pytest.raises(InputError, match=r"--jobs 3 needs 3 GPUs .* 2 visible \(0,1\); use "
                                         r"--jobs 2"):
        gpu_slots(["0", "1"], 3, 1)
    with pytest.raises(InputError, match=r"1 visible \(0\); lower the suite's `resources.gpus`"):
        gpu_slots(["0"], 1, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [("resources: {cpus: 0}", r"suite.yaml:2: resources.cpus: must be an integer >= 1, got 0"),
     ("resources: {gpus: 0.5}", r"resources.gpus: must be an integer >= 0 or null"),
     ("resources: {memory: 4}", r"resources.memory: unknown key; valid keys: cpus, gpus")],
    ids=["cpus", "fractional-gpu", "unknown"],
)
def test_resources_are_validated(tmp_path, text, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, f"name: x\n{text}\ntasks:\n  - task: fake_ok\n"))


def test_resources_default_to_one_gpu_per_run_on_cuda(tmp_path):
    suite = load_suite(write(tmp_path, "name: x\ntasks:\n  - task: fake_ok\n"))
    assert (suite.resources.cpus, suite.resources.gpus_on("cuda"),
            suite.resources.gpus_on("cpu")) == (1, 1, 0)


SLEEPY = """\
name: sleepy
device: cpu
seeds: [0, 1, 2, 3]
measure: {warmup_iters: 0, time_limit_s: 120}
defaults: {t_end: 0.1, step_size: 0.05}
tasks:
  - task: fake_ok
    sleep: 0.25
"""


def _driver(tmp_path: Path, *options: str) -> tuple[list[str], dict[str, str]]:
    """The command line running SLEEPY, and its environment."""
    cmd = [sys.executable, "-m", "fdebench.cli", "run", str(write(tmp_path, SLEEPY)), "--quiet",
           "--results-dir", str(tmp_path / "results"), "--reports-dir", str(tmp_path / "rep"),
           *options]
    return cmd, {**os.environ, **ENV}


def _first_record(process: subprocess.Popen, results: Path) -> None:
    runs = results / "sleepy" / "runs.jsonl"
    deadline = time.monotonic() + 180
    while not (runs.exists() and runs.read_text().count("\n") >= 1):
        assert process.poll() is None and time.monotonic() < deadline, process.returncode
        time.sleep(0.1)


# ---- refusals ---------------------------------------------------------------------------
def test_a_missing_ray_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from fdebench.cli import main; "
            f"sys.exit(main(['run', {str(write(tmp_path, MIX))!r}, '--executor', 'ray']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **ENV}, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        'fdebench: error: --executor ray needs Ray, an optional extra: pip install '
        '"fdebench[ray]"']
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--executor", "ray", "--address", f"127.0.0.1:{_free_port()}"],
      "cannot reach a Ray cluster at 127.0.0.1:"),
     (["--executor", "ray", "--address", "nowhere"], "--address must be auto or HOST:PORT"),
     (["--address", "auto"], "--address names a Ray cluster: use it with --executor ray"),
     (["--executor", "slurm"], "unknown executor 'slurm'; valid executors: local, ray")],
    ids=["unreachable", "not-an-address", "address-without-ray", "unknown-executor"],
)
def test_bad_executor_options_are_one_line(tmp_path, capsys, options, message):
    if "ray" in options:
        pytest.importorskip("ray")
    args = ["--results-dir", str(tmp_path / "r"), "--reports-dir", str(tmp_path / "rep")]
    assert main(["run", str(write(tmp_path, MIX)), *args, *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r").exists()


# ---- Ray ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray cluster of this machine (``ray start --head`` on loopback, 2 CPUs) for the
    module; its address."""
    pytest.importorskip("ray")
    port = _free_port()
    log = tmp_path_factory.mktemp("ray") / "head.log"
    ray = Path(sys.executable).with_name("ray")
    cmd = [str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
           "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats"]
    with log.open("w") as out:
        head = subprocess.Popen(cmd, env={**os.environ, **ENV}, stdout=out, stderr=out,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` then stops what it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # anything left in its session
        head.wait()


@pytest.mark.slow
def test_ray_gives_the_same_runs_and_statuses(tmp_path, sequential):
    """On a private Ray instance that fdebench starts and stops."""
    pytest.importorskip("ray")
    counts = run_suite(load_suite(write(tmp_path, MIX)), tmp_path / "r", quiet=True,
                       executor="ray", jobs=2)
    assert _outcomes(tmp_path / "r") == sequential
    assert counts == {"ok": 2, "error": 2, "nan": 1}
    found = records(tmp_path / "r", "mix")
    assert {(r["executor"], r["node"]) for r in found} == {("ray", platform.node())}
    assert {r["concurrent_runs"] for r in found} <= {1, 2}
    # a Ray run gets the suite's `resources.cpus` (default 1) as torch threads
    assert {r["env"]["threads"] for r in found if r["status"] == "ok"} == {1}


@pytest.mark.slow
def test_a_lost_ray_worker_is_recorded_and_the_suite_goes_on(tmp_path, cluster, pids):
    text = MIX.replace("  - task: fake_raise\n  - task: fake_nan\n  - task: fake_exit\n",
                       "  - task: fake_lose\n")
    counts = run_suite(load_suite(write(tmp_path, text)), tmp_path / "r", quiet=True,
                       executor="ray", address=cluster)
    assert counts == {"ok": 2, "error": 1}
    lost = next(r for r in records(tmp_path / "r", "mix") if r["task"] == "fake_lose")
    assert lost["status"] == "error" and lost["executor"] == "ray"
    assert lost["message"].startswith("lost: the Ray worker running it died (WorkerCrashed")
    assert _none_left(pids)  # the run went down with its worker


@pytest.mark.slow
def test_the_time_limit_holds_on_ray(tmp_path, cluster, pids):
    text = MIX.replace("time_limit_s: 120", "time_limit_s: 3").split("tasks:")[0]
    started = time.monotonic()
    counts = run_suite(load_suite(write(tmp_path, text + "tasks:\n  - task: fake_slow\n")),
                       tmp_path / "r", quiet=True, executor="ray", address=cluster)
    assert counts == {"timeout": 1}
    assert time.monotonic() - started < 45  # the run sleeps 60 s
    (record,) = records(tmp_path / "r", "mix")
    assert record["message"] == "exceeded the time limit of 3 s" and 3 <= record["wall_s"] < 30
    assert not _alive(pids)


# ---- interrupted drivers, whatever the executor -------------------------------------------
ON_RAY = pytest.param("ray", marks=pytest.mark.slow)


def _options(executor: str, request: pytest.FixtureRequest) -> list[str]:
    """Two runs at once on this machine, or on the test cluster."""
    if executor == "local":
        return ["--jobs", "2"]
    return ["--executor", "ray", "--address", request.getfixturevalue("cluster"), "--jobs", "2"]


@pytest.mark.parametrize("executor", ["local", ON_RAY])
def test_kill_9_loses_nothing_finished_and_resumes(tmp_path, pids, request, executor):
    cmd, env = _driver(tmp_path, *_options(executor, request))
    driver = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        _first_record(driver, tmp_path / "results")
        driver.kill()  # the driver alone: what it started must notice
        driver.wait()
        finished = {r["run_id"] for r in records(tmp_path / "results", "sleepy")}
        assert 1 <= len(finished) < 4
        assert _none_left(pids)  # the runs still going died with their driver
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # whatever is left of its session
    subprocess.run(cmd, env=env, check=True)
    found = records(tmp_path / "results", "sleepy")
    assert {r["run_id"] for r in found} >= finished
    assert len(found) == len({r["run_id"] for r in found}) == 4  # nothing ran twice
    assert {r["status"] for r in found} == {"ok"}


@pytest.mark.parametrize("executor", ["local", ON_RAY])
def test_ctrl_c_cancels_the_rest_and_keeps_finished_runs(tmp_path, pids, request, executor):
    cmd, env = _driver(tmp_path, *_options(executor, request))
    driver = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    _first_record(driver, tmp_path / "results")
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert "interrupted; finished runs are recorded" in err
    assert 1 <= len(records(tmp_path / "results", "sleepy")) < 4
    assert _none_left(pids)


# ---- the report ---------------------------------------------------------------------------
def _record(gradient: str, node: str, concurrent: int) -> dict:
    config = {"alpha": 0.5, "method": "euler", "gradient": gradient, "step_size": 0.05,
              "t_end": 1.0, "n_steps": 20, "seed": 0}
    return {**config, "suite": "s", "run_id": f"t[gradient={gradient}]", "task": "t",
            "status": "ok", "config_keys": list(config), "id_keys": ["gradient", "seed"],
            "time_per_iter_s": 0.01, "peak_mem_bytes": 2**20, "executor": "local",
            "node": node, "concurrent_runs": concurrent}


@pytest.mark.parametrize(
    ("runs", "warned"),
    [([("direct", "a", 1), ("adjoint", "a", 2)], True),
     ([("direct", "a", 2), ("adjoint", "a", 2)], False),
     ([("direct", "a", 1), ("adjoint", "b", 2)], False)],
    ids=["mixed-on-one-node", "same-concurrency", "different-nodes"],
)
def test_the_report_warns_about_times_taken_at_different_concurrency(tmp_path, runs, warned):
    for gradient, node, concurrent in runs:
        append_record(tmp_path / "results" / "s" / "runs.jsonl",
                      _record(gradient, node, concurrent))
    text = write_report(tmp_path / "results" / "s", tmp_path / "reports").read_text()
    assert ("measured at different concurrency on one node (`a`: 1, 2 runs at once)"
            in text) is warned
