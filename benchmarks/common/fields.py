"""The vector fields the benchmarks integrate, and the device and thread settings they share.

* ``mlp``: a state of 256 rows x 64 features; the field ``Linear(64, 1024) -> Tanh ->
  Linear(1024, 64)`` acts row-wise.
* ``mlp-small``: the same field at 128 rows x 32 features, hidden 256: the regression gate's
  size (a pass takes milliseconds; every activation is still a separate allocation to count).
* ``mlp-64-256`` and ``linear-64``: a state of 128 rows x 64 features; ``Linear(64, 256) -> Tanh
  -> Linear(256, 64)`` and ``Linear(64, 64)`` row-wise: cheap fields, so that the history sums
  dominate a long solve (:mod:`benchmarks.long_horizon`).
* ``conv``: a state of 32 x 64 x 7 x 7 feature maps; the field ``GroupNorm(32, 64) -> ReLU ->
  TimeConv3x3 -> GroupNorm -> ReLU -> TimeConv3x3``, where ``TimeConv3x3`` appends a channel
  filled with ``t`` to its input (``Conv2d(65, 64, 3, padding=1)``).

Both are built with a fixed seed so every process (the benchmark and its memory probes) sees the
same weights and initial state.
"""

from __future__ import annotations

import os

import torch
from torch import nn

__all__ = [
    "FIELDS",
    "ConvField",
    "LinearField",
    "MLPField",
    "TimeConv2d",
    "bench_device",
    "bench_threads",
    "make_field",
    "set_threads",
]

SEED = 0
FIELDS = ("mlp", "conv", "mlp-small", "mlp-64-256", "linear-64")


class MLPField(nn.Module):
    """``f(t, y) = W2 tanh(W1 y + b1) + b2`` applied to each row of ``y`` (autonomous)."""

    def __init__(self, features: int = 64, hidden: int = 1024) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, features)
        )

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class LinearField(nn.Module):
    """``f(t, y) = y W^T + b`` applied to each row of ``y`` (autonomous)."""

    def __init__(self, features: int = 64) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.linear(y)


class TimeConv2d(nn.Module):
    """A 3x3 convolution whose input gets one extra channel filled with the time ``t``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels + 1, channels, kernel_size=3, padding=1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        tt = torch.ones_like(x[:, :1]) * t
        return self.conv(torch.cat([tt, x], dim=1))


class ConvField(nn.Module):
    """``GroupNorm -> ReLU -> TimeConv3x3 -> GroupNorm -> ReLU -> TimeConv3x3`` (ODE-Net block)."""

    def __init__(self, channels: int = 64, groups: int = 32) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = TimeConv2d(channels)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.conv2 = TimeConv2d(channels)
        self.relu = nn.ReLU()

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.conv1(t, self.relu(self.norm1(y)))
        return self.conv2(t, self.relu(self.norm2(out)))


def make_field(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, torch.Tensor]:
    """The seeded field ``name`` (one of :data:`FIELDS`) and its initial state, on ``device``.

    ``y0`` is float32 and does not require grad; the field's parameters do.
    """
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    if name == "mlp":
        field: nn.Module = MLPField()
        y0 = torch.randn(256, 64, generator=gen)
    elif name == "mlp-small":
        field = MLPField(features=32, hidden=256)
        y0 = torch.randn(128, 32, generator=gen)
    elif name == "mlp-64-256":
        field = MLPField(features=64, hidden=256)
        y0 = torch.randn(128, 64, generator=gen)
    elif name == "linear-64":
        field = LinearField(64)
        y0 = torch.randn(128, 64, generator=gen)
    elif name == "conv":
        field = ConvField()
        y0 = torch.randn(32, 64, 7, 7, generator=gen)
    else:
        raise ValueError(f"unknown field {name!r}; valid fields: {', '.join(FIELDS)}")
    return field.to(device), y0.to(device)


def bench_device() -> torch.device:
    """``$FDEBENCH_BENCH_DEVICE`` if set, else ``cuda`` when available, else ``cpu``."""
    name = os.environ.get("FDEBENCH_BENCH_DEVICE") or (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    return torch.device(name)


def bench_threads() -> int:
    """Intra-op threads for every benchmark process: ``$FDEBENCH_BENCH_THREADS`` or all cores."""
    env = os.environ.get("FDEBENCH_BENCH_THREADS")
    if env:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (default :func:`bench_threads`); return it."""
    threads = bench_threads() if threads is None else threads
    torch.set_num_threads(threads)
    return threads
