"""The one timing recipe: synchronise the device around the timed region, ``perf_counter``,
median and inter-quartile range over the timed iterations (after warm-up)."""

from __future__ import annotations

import statistics
import time

import torch

__all__ = ["median_iqr", "now"]


def now(device: torch.device) -> float:
    """``time.perf_counter()`` after all queued work on ``device`` has finished."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def median_iqr(samples: list[float]) -> tuple[float | None, float | None]:
    """Median and inter-quartile range (``None`` for no samples, IQR 0 for one)."""
    if not samples:
        return None, None
    if len(samples) == 1:
        return samples[0], 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return statistics.median(samples), q3 - q1
