"""``image_classification``: an ODE-Net style classifier with a fractional FDE block.

Model: downsampling convolutions ``Conv(C->w, 3x3) GN ReLU Conv(w->w, 4x4, /2) GN ReLU
Conv(w->w, 4x4, /2)``, then one :class:`FDEBlock` solved on ``[0, t_end]`` whose field is
``GN ReLU TimeConv3x3 GN ReLU TimeConv3x3 GN`` (a time conv sees ``t`` as an extra input
channel), then ``GN ReLU AdaptiveAvgPool Linear(w -> n_classes)``.  GroupNorm has
``min(32, w // 2)`` groups (ODE-Net's ``min(32, w)`` for ``w >= 64``; see :func:`_norm`).
Images smaller than 16 pixels (the 8 x 8 ``digits``) are not downsampled: the two 4x4
stride-2 convs become 3x3 stride-1 convs.

Data (see :mod:`.image_data`) are loaded, subset, normalised and moved to the task's device once
in :meth:`ImageClassification.setup`; training batches are slices of a seeded per-epoch
permutation of those device tensors, so loading never enters the timed iterations.  The
learning-rate schedule is applied inside :meth:`ImageClassification.loss`, because the runner
only calls ``optimizer.step()``.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from .base import HIGHER, LOWER, FDEBlock, Task
from .image_data import DATASETS, DESCRIPTIONS, load_dataset, normalise, subset

__all__ = ["TASKS", "ImageClassification", "build_model"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "cosine")
PROBE_BATCH = 32
EVAL_BATCH = 500


def _norm(width: int) -> nn.GroupNorm:
    """GroupNorm with ``min(32, width // 2)`` groups: at least two channels per group, since a
    one-channel group (``width <= 32`` with ``min(32, width)``) normalises away every channel's
    spatial mean and the final average pooling then sees almost nothing."""
    return nn.GroupNorm(max(min(32, width // 2), 1), width)


class TimeConv(nn.Module):
    """A 3x3 convolution of ``[t, x]``: the time enters as one constant channel."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width + 1, width, 3, padding=1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        tt = torch.ones_like(x[:, :1]) * t
        return self.conv(torch.cat([tt, x], dim=1))


class ConvField(nn.Module):
    """The FDE right-hand side ``GN ReLU TimeConv GN ReLU TimeConv GN``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = _norm(width), _norm(width), _norm(width)
        self.conv1, self.conv2 = TimeConv(width), TimeConv(width)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(t, F.relu(self.norm1(x)))
        x = self.conv2(t, F.relu(self.norm2(x)))
        return self.norm3(x)


class FinalState(nn.Module):
    """An FDE block returning only the state at ``t_end``."""

    def __init__(self, block: FDEBlock) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)[-1]


def build_model(channels: int, width: int, n_classes: int, image_size: int, t_end: float,
                engine: dict[str, Any]) -> nn.Sequential:
    """The classifier; ``engine`` holds the :class:`FDEBlock` settings (alpha, method, ...)."""
    if image_size >= 16:
        down = [nn.Conv2d(width, width, 4, 2, 1) for _ in range(2)]
    else:
        down = [nn.Conv2d(width, width, 3, 1, 1) for _ in range(2)]
    t_eval = torch.tensor([0.0, t_end])
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1), _norm(width), nn.ReLU(),
        down[0], _norm(width), nn.ReLU(), down[1],
        FinalState(FDEBlock(ConvField(width), t_eval, **engine)),
        _norm(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(width, n_classes),
    )


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` and random horizontal flip, on ``x``'s device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(2 * pad + 1, (n, 1, 1), generator=gen, device=x.device)
    dx = torch.randint(2 * pad + 1, (n, 1, 1), generator=gen, device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    flip = torch.rand(n, 1, 1, 1, generator=gen, device=x.device) < 0.5
    return torch.where(flip, out.flip(3), out)


class ImageClassification(Task):
    """MNIST / CIFAR-10 / digits / synthetic classification through one FDE block."""

    name = "image_classification"
    params: ClassVar[dict[str, Any]] = {
        "dataset": "mnist", "data_root": "", "download": False,
        "max_train_samples": 0, "max_test_samples": 0,
        "channels": 3, "image_size": 32, "n_classes": 10,  # synthetic only
        "width": 64, "optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "lr_schedule": "cosine",
        "batch_size": 128, "epochs": 1, "max_steps": 0, "augment": False,
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "dataset": DATASETS, "optimizer": OPTIMIZERS, "lr_schedule": SCHEDULES}
    metrics: ClassVar[dict[str, str | None]] = {"test_accuracy": HIGHER, "train_loss": LOWER}
    probe_float64 = False  # a conv net: probe in float32

    @classmethod
    def skip(cls, config: dict[str, Any]) -> str | None:
        c = config
        if c["augment"] and c["dataset"] != "cifar10":
            return "augment is implemented for cifar10 only"
        if c["batch_size"] < 1 or c["width"] < 1 or (c["epochs"] < 1 and c["max_steps"] < 1):
            return "batch_size and width must be >= 1, and epochs or max_steps >= 1"
        return None

    # ---- setup ----------------------------------------------------------------------------
    def setup(self) -> None:
        c = self.config
        self._gen = torch.Generator().manual_seed(c["seed"])
        self._load_data()
        torch.manual_seed(c["seed"])
        _, channels, size, _ = self.x_train.shape
        self.model = build_model(channels, c["width"], self.n_classes, size, c["t_end"],
                                 self.engine_kwargs()).to(self.device)
        self.optimizer = self._make_optimizer()
        self.batches_per_epoch = max(len(self.y_train) // self.batch_size, 1)
        total = max(c["epochs"], 0) * self.batches_per_epoch
        self.iterations = min(total or c["max_steps"], c["max_steps"] or total)
        self._step, self._order = 0, torch.empty(0, dtype=torch.long)
        self._epoch_sum = torch.zeros((), device=self.device)
        self.epoch_losses: list[torch.Tensor] = []
        self._aug_gen = None
        if c["augment"]:
            self._aug_gen = torch.Generator(device=self.device).manual_seed(c["seed"])

    def _load_data(self) -> None:
        """Load, subset (seeded), normalise and move the data to the device, once (timed as
        ``data_time_s``, outside the timed training iterations)."""
        c = self.config
        started = time.perf_counter()
        n_train, n_test = c["max_train_samples"] or 2048, c["max_test_samples"] or 512
        xtr, ytr, xte, yte = load_dataset(
            c["dataset"], data_root=c["data_root"], download=c["download"], seed=c["seed"],
            synthetic_shape=(c["channels"], c["image_size"], c["n_classes"]),
            synthetic_sizes=(n_train, n_test))
        xtr, ytr = subset(xtr, ytr, c["max_train_samples"], self._gen)
        xte, yte = subset(xte, yte, c["max_test_samples"], self._gen)
        xtr, xte = normalise(xtr, xte)
        self.n_classes = int(max(ytr.max(), yte.max()).item()) + 1
        if c["dataset"] == "synthetic":
            self.n_classes = c["n_classes"]
        self.x_train, self.y_train = xtr.to(self.device), ytr.to(self.device)
        self.x_test, self.y_test = xte.to(self.device), yte.to(self.device)
        self.batch_size = min(c["batch_size"], len(ytr))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.data_time_s = time.perf_counter() - started
        shape = "x".join(map(str, xtr.shape[1:]))
        self.data = (f"{DESCRIPTIONS[c['dataset']]}: {len(ytr)} train / {len(yte)} test images "
                     f"of {shape}, {self.n_classes} classes")

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c["optimizer"] == "adam":
            return torch.optim.Adam(self.model.parameters(), lr=c["lr"],
                                    weight_decay=c["weight_decay"])
        return torch.optim.SGD(self.model.parameters(), lr=c["lr"], momentum=0.9,
                               weight_decay=c["weight_decay"])

    # ---- training -------------------------------------------------------------------------
    def _set_lr(self) -> None:
        if self.config["lr_schedule"] != "cosine":
            return
        lr = 0.5 * self.config["lr"] * (1 + math.cos(math.pi * self._step / self.iterations))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next slice of this epoch's seeded permutation (new epoch: new permutation)."""
        k = self._step % self.batches_per_epoch
        if k == 0:
            if self._step:
                self.epoch_losses.append(self._epoch_sum / self.batches_per_epoch)
                self._epoch_sum = torch.zeros((), device=self.device)
            self._order = torch.randperm(len(self.y_train), generator=self._gen).to(self.device)
        idx = self._order[k * self.batch_size:(k + 1) * self.batch_size]
        x, y = self.x_train[idx], self.y_train[idx]
        if self._aug_gen is not None:
            x = augment_batch(x, self._aug_gen)
        return x, y

    def loss(self, model: nn.Module) -> torch.Tensor:
        self._set_lr()
        x, y = self._next_batch()
        model.train()
        loss = F.cross_entropy(model(x), y)
        self._epoch_sum = self._epoch_sum + loss.detach()
        self._step += 1
        return loss

    def probe_loss(self, model: nn.Module) -> torch.Tensor:
        dtype = next(model.parameters()).dtype
        x, y = self.x_train[:PROBE_BATCH], self.y_train[:PROBE_BATCH]
        return F.cross_entropy(model(x.to(dtype)), y)

    # ---- evaluation -----------------------------------------------------------------------
    def train_loss(self) -> float:
        """The last complete epoch's mean training loss (else the current epoch's so far)."""
        if self.epoch_losses and self._step % self.batches_per_epoch:
            return self.epoch_losses[-1].item()
        done = self._step % self.batches_per_epoch or self.batches_per_epoch
        return (self._epoch_sum / done).item() if self._step else math.nan

    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(self.y_test), EVAL_BATCH):
                logits = self.model(self.x_test[i:i + EVAL_BATCH])
                correct += (logits.argmax(1) == self.y_test[i:i + EVAL_BATCH]).sum().item()
        self.model.train()
        return {"test_accuracy": correct / len(self.y_test), "train_loss": self.train_loss()}


TASKS = [ImageClassification]
