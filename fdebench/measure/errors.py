"""The one relative error of the project: of a gradient against a reference gradient, of a
solution against an exact one (the runner's gradient fidelity, the benchmarks' checks)."""

from __future__ import annotations

import math

import torch

__all__ = ["relative_error"]


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """``|value - reference| / |reference|`` (Frobenius norms) in the reference's precision.

    A zero reference gives 0 when ``value`` is zero too and ``inf`` otherwise: a difference from
    a zero reference is never reported as small."""
    difference = (value.to(reference.dtype) - reference).norm().item()
    scale = reference.norm().item()
    if scale == 0:
        return 0.0 if difference == 0 else math.inf
    return difference / scale
