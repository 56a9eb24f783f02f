"""The markdown report of a results folder: ``reports/<suite>/README.md`` plus its figures."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..results import OK, load
from . import figures
from .claims import claims_section
from .fidelity import fidelity_section, fine_step, reference_lines, skipped_fine_lines
from .grouping import config_keys, format_value, metric_names, with_modes
from .order import order_section
from .series import floor_ratios, scaling_panels, time_memory_panels, training_curves
from .tables import (
    MIB,
    concurrency_warning,
    environment_table,
    exponent_table,
    failed_table,
    floor_table,
    gradient_summary,
    gradient_table,
    markdown_table,
    status_counts,
)

__all__ = ["write_report", "write_suite_report"]

README = "README.md"
HOW_TO_READ = (  # {fine_step}: from the records (see fdebench.report.fidelity.fine_step)
    "Tables show `ok` runs only, one row per configuration and gradient mode. `peak mem` is the "
    "peak of the tensor bytes torch holds during one training iteration above its start (the "
    "allocator's count, exact and the same on CPU and CUDA; measured in an untimed iteration of "
    "its own); `peak RSS` (CPU) and `GPU used` (CUDA, NVML) are the whole process's or GPU's "
    "peak during the timed iterations, libraries included. Memory and time are means over "
    "seeds; `x / direct` compares with `direct` at the same configuration; metrics are "
    "mean ± std over seeds (the first is the task's headline metric); `grad rel err` is the "
    "largest over seeds of this mode's gradient against direct's (direct is the reference), "
    "`grad rel err fine` against a float64 direct gradient at {fine_step} (every mode)."
)


def _slug(name: str) -> str:
    """``name`` made safe as a file or folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "unnamed"


def _figure(path: Path | None, alt: str, caption: str) -> list[str]:
    """Markdown lines embedding the figure at ``path`` (nothing when it was not drawn)."""
    if path is None:
        return []
    return [f"![{alt}]({path.name})", "", f"*{caption}*", ""]


def _png(folder: Path, task: str, kind: str) -> Path:
    """Where a task's figure of ``kind`` goes."""
    return folder / f"{_slug(task)}_{kind}.png"


def _floor_lines(memory: list) -> list[str]:
    """The peak-over-floor table and which modes sit under the trajectory floor (nothing when
    the records do not say the state's size)."""
    table = floor_table(memory)
    if table is None:
        return []
    ratios = floor_ratios(memory)
    below = ratios.groupby("gradient", sort=False)["ratio"].agg(lambda r: (r < 1).all())
    under = [f"`{m}`" for m, b in below.items() if b]
    over = [f"`{m}`" for m, b in below.items() if not b]
    verdict = (f"Under the floor at the largest N: {', '.join(under) or 'none'}; at or above it "
               f"(in some configuration): {', '.join(over) or 'none'}.")
    return ["Trajectory floor: (N + 1) |y|, |y| the bytes of the FDE state (`state_bytes`): the "
            "memory of the solution at every step, which a gradient that stores the trajectory "
            "holds at least; the compressed history (`history: soe`) with `revolve` keeps "
            "(K + 1) |y| per checkpoint instead (K exponentials, about 30). "
            "Each mode's peak against it at its largest N:", "", table, "", verdict, ""]


def _scaling_section(task: str, runs: pd.DataFrame, keys: list[str], folder: Path) -> list[str]:
    """Exponent table and memory/time-vs-N figures, when some configuration spans several N;
    with the trajectory floor where the records give the state's size."""
    memory = scaling_panels(runs, keys, "peak_mem_bytes", 1 / MIB, floor=True)
    time = scaling_panels(runs, keys, "time_per_iter_s", 1e3)
    if not memory and not time:
        return []
    lines = ["### Scaling with the number of steps", "",
             "Growth exponent k: least-squares slope of log(value) against log(N), over the "
             "mean of the seeds at each N.", "", exponent_table(memory, time), "",
             *_floor_lines(memory)]
    drawn = figures.scaling_figure(memory, _png(folder, task, "memory_vs_steps"),
                                   f"{task}: peak memory vs number of steps", "peak memory (MiB)")
    floor = any(panel.floor is not None for panel in memory)
    lines += _figure(drawn, "peak memory vs N", "Peak memory against the number of steps N per "
                     "gradient mode (log-log, mean over seeds); legend: fitted growth ~N^k" + (
                         "; grey: the trajectory floor (N+1)|y|." if floor else "."))
    drawn = figures.scaling_figure(time, _png(folder, task, "time_vs_steps"),
                                   f"{task}: time per iteration vs number of steps",
                                   "time per iteration (ms)")
    return lines + _figure(drawn, "time per iteration vs N", "Time per training iteration "
                           "against the number of steps N per gradient mode (log-log, mean over "
                           "seeds); legend: fitted growth ~N^k.")


def _other_figures(task: str, runs: pd.DataFrame, keys: list[str], summary: pd.DataFrame,
                   folder: Path) -> list[str]:
    """The training-curve and memory-vs-time figures of one task."""
    label, curves = training_curves(runs, keys)
    drawn = figures.training_figure(curves, _png(folder, task, "training_curves"),
                                    f"{task}: training loss ({label})")
    lines = _figure(drawn, "training curves", f"Training loss per iteration at {label}, one "
                    "line per gradient mode (mean over seeds; band: min to max).")
    drawn = figures.memory_vs_time(time_memory_panels(summary, keys),
                                   _png(folder, task, "memory_vs_time"),
                                   f"{task}: peak memory vs time per iteration")
    return lines + _figure(drawn, "memory vs time", "Peak memory against time per iteration, "
                           "one point per configuration and gradient mode (means over seeds, "
                           "log-log; N: number of steps); dashed: the Pareto front.")


def _data_lines(runs: pd.DataFrame) -> list[str]:
    """What the task's data are (generated data flagged **synthetic**) and the time spent
    loading them, outside the timed iterations."""
    lines = []
    for value in runs.get("data", pd.Series(dtype=object)).map(format_value).unique():
        if value.startswith("synthetic"):
            lines += [f"**Synthetic data:** {value.removeprefix('synthetic').lstrip(': ')}.", ""]
        elif value:
            lines += [f"Data: {value}.", ""]
    ok = runs[runs["status"] == OK]
    data_time = pd.to_numeric(ok.get("data_time_s", pd.Series(dtype=float)), errors="coerce")
    setup_time = pd.to_numeric(ok.get("setup_time_s", pd.Series(dtype=float)), errors="coerce")
    if data_time.gt(0).any():
        lines += [f"Data loading and transfer to the device, outside the timed iterations: "
                  f"{data_time.mean():.3g} s per run on average (whole setup: "
                  f"{setup_time.mean():.3g} s).", ""]
    return lines


def _task_section(task: str, runs: pd.DataFrame, folder: Path) -> list[str]:
    """The table and figures of one task."""
    keys, metrics = config_keys(runs), metric_names(runs)
    lines = [f"## Task `{task}`", "", status_counts(runs) + ".", "", *_data_lines(runs)]
    if not (runs["status"] == OK).any():
        return [*lines, "No successful runs: see *Failed runs* below.", ""]
    if metrics:
        lines += [f"Headline metric: `{metrics[0]}`.", ""]
    if warning := concurrency_warning(runs):
        lines += [warning, ""]
    summary = gradient_summary(runs, keys, metrics)
    lines += [gradient_table(summary, keys, metrics), "", *reference_lines(runs),
              *skipped_fine_lines(runs)]
    lines += _scaling_section(task, runs, keys, folder)
    lines += fidelity_section(task, runs, keys, lambda kind: _png(folder, task, kind), _figure)
    lines += order_section(task, runs, keys, lambda kind: _png(folder, task, kind), _figure)
    return lines + _other_figures(task, runs, keys, summary, folder)


def provenance(runs: pd.DataFrame) -> str:
    """When, at which commits and on which machines the runs ran, from their records."""
    def distinct(column: str) -> str:
        values = runs[column].dropna().map(format_value) if column in runs.columns else []
        return ", ".join(sorted(set(values) - {""})) or "unknown"

    started = pd.to_datetime(runs.get("started_at", pd.Series(dtype=object)), errors="coerce",
                             utc=True).dropna()
    dates = "unknown dates" if started.empty else (
        f"{started.min():%Y-%m-%d}" if started.min().date() == started.max().date()
        else f"{started.min():%Y-%m-%d} to {started.max():%Y-%m-%d}")
    return (f"Measured {dates} at commit {distinct('env.git_commit')} on "
            f"{distinct('env.device_name')} ({distinct('env.hostname')}); rendered by "
            f"`fdebench report` from the suite's records.")


def _header(suite: str, runs: pd.DataFrame) -> list[str]:
    """Title, provenance, run counts and environment."""
    lines = [f"# fdebench report: suite `{suite}`", "", provenance(runs), "",
             status_counts(runs) + ".", "", HOW_TO_READ.format(fine_step=fine_step(runs)), ""]
    environment = environment_table(runs)
    if not environment.empty:
        lines += ["## Environment", "", markdown_table(environment), ""]
    return lines


def _failed_section(runs: pd.DataFrame) -> list[str]:
    """The table of runs whose status is not ``ok`` (nothing when all succeeded)."""
    failed = failed_table(runs)
    if failed.empty:
        return []
    return ["## Failed runs", "", markdown_table(failed), ""]


def write_suite_report(runs: pd.DataFrame, suite: str, folder: str | Path) -> Path:
    """Write ``folder/README.md`` and its figures for one suite's ``runs``; return the README."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runs = with_modes(runs)  # revolve+soe: a mode of its own, beside direct at each configuration
    lines = _header(suite, runs)
    tasks = runs["task"].map(format_value).replace("", "unknown")
    lines += claims_section(runs, lambda task, kind: _png(folder, task, kind), _figure)
    for task in tasks.unique():
        lines += _task_section(task, runs[tasks == task], folder)
    lines += _failed_section(runs)
    readme = folder / README
    readme.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return readme


def _write_index(reports_dir: Path, readmes: dict[str, Path]) -> Path:
    """``reports_dir/README.md`` linking to each suite's report."""
    lines = ["# fdebench reports", ""]
    lines += [f"- [{suite}]({path.relative_to(reports_dir).as_posix()})"
              for suite, path in readmes.items()]
    index = reports_dir / README
    index.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index


def write_report(results_dir: str | Path, reports_dir: str | Path) -> Path:
    """Write ``reports_dir/<suite>/README.md`` (tables, figures, failures) for every suite
    stored under ``results_dir`` (see :func:`fdebench.results.load`) and return its path;
    with several suites, also an index ``reports_dir/README.md``, whose path is returned."""
    runs = load(results_dir)
    reports_dir = Path(reports_dir)
    suites = runs["suite"].map(format_value).replace("", Path(results_dir).name)
    names = list(suites.unique()) or [Path(results_dir).name]
    readmes = {name: write_suite_report(runs[suites == name], name, reports_dir / _slug(name))
               for name in names}
    if len(readmes) == 1:
        return next(iter(readmes.values()))
    return _write_index(reports_dir, readmes)
