"""Image data for the ``image_classification`` task: loading, subsetting, normalising.

Every loader returns ``(x_train, y_train, x_test, y_test)`` as CPU tensors, images
``n x C x H x W`` (uint8 or float) and int64 labels.  The task moves them to its device once.

Data sets:

* ``mnist`` and ``cifar10`` through torchvision, under a root resolved by :func:`resolve_root`
  (the ``data_root`` parameter, else ``$FDEBENCH_DATA``, else ``~/.cache/fdebench/data``).
  CIFAR-10 ships as Python pickles, and unpickling an unknown file runs its code: a file whose
  md5 sum does not match torchvision's list is refused (:class:`DataIntegrityError`, naming the
  file and the fix) and never opened by the unpickler.
* ``digits``: scikit-learn's bundled 8 x 8 digits (no download), a fixed 80/20 split.
* ``synthetic``: seeded random images with a class-dependent mean (learnable, barely).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputError

__all__ = [
    "DATASETS", "DESCRIPTIONS", "DataIntegrityError", "DataMissingError", "load_dataset",
    "normalise", "resolve_root", "subset",
]

DATASETS = ("mnist", "cifar10", "digits", "synthetic")
#: how reports name each data set (generated data begin with "synthetic")
DESCRIPTIONS = {
    "mnist": "MNIST (torchvision)", "cifar10": "CIFAR-10 (torchvision)",
    "digits": "scikit-learn digits (8 x 8)",
    "synthetic": "synthetic: random class-prototype images plus noise (not real data)",
}
Arrays = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
CIFAR_FOLDER = "cifar-10-batches-py"


class DataMissingError(FileNotFoundError):
    """A data set's files are not where we looked (and were not, or could not be, downloaded)."""


class DataIntegrityError(InputError):
    """A data file is there but is not the file its checksum list names."""


def resolve_root(data_root: str = "") -> Path:
    """The data root: ``data_root`` if set, else ``$FDEBENCH_DATA``, else the user cache."""
    root = data_root or os.environ.get("FDEBENCH_DATA", "") or "~/.cache/fdebench/data"
    return Path(root).expanduser()


def _missing(name: str, where: Path, download: bool, cause: BaseException | None) -> Exception:
    why = f"download failed ({type(cause).__name__}: {cause})".splitlines()[0] if download \
        else "download is off"
    return DataMissingError(
        f"{name} not found under {where} ({why}). Fix: set the task parameter data_root or the "
        f"environment variable FDEBENCH_DATA to a folder holding the {name} files, or set "
        f"download: true (needs internet)."
    )


def load_mnist(root: Path, download: bool) -> Arrays:
    """MNIST via torchvision (reads ``root/MNIST/raw``; writes nothing unless downloading)."""
    from torchvision.datasets import MNIST

    try:
        train, test = (MNIST(str(root), train=t, download=download) for t in (True, False))
    except Exception as exc:  # not found, or the download failed offline
        raise _missing("MNIST", root / "MNIST" / "raw", download, exc) from exc
    return train.data.unsqueeze(1), train.targets.long(), test.data.unsqueeze(1), \
        test.targets.long()


def _cifar_integrity(root: Path, download: bool) -> None:
    """Refuse CIFAR-10 files that are missing (:class:`DataMissingError`, unless ``download``)
    or fail torchvision's md5 list (:class:`DataIntegrityError`), before anything unpickles
    them."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import calculate_md5

    folder = root / CIFAR10.base_folder
    expected = [*CIFAR10.train_list, *CIFAR10.test_list,
                [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    missing = [name for name, _ in expected if not (folder / name).is_file()]
    if missing:
        if download:
            return  # torchvision downloads and checks them
        raise _missing("CIFAR-10", folder, download, None)
    for name, md5 in expected:
        actual = calculate_md5(str(folder / name))
        if actual != md5:
            raise DataIntegrityError(
                f"CIFAR-10 file {folder / name} fails its integrity check (md5 {actual}, "
                f"expected {md5}): refused, since unpickling an unknown file runs its code. "
                f"Fix: delete {folder} and run with download: true, or put the original "
                "CIFAR-10 python files there.")


def load_cifar10(root: Path, download: bool) -> Arrays:
    """CIFAR-10 via torchvision, after :func:`_cifar_integrity`."""
    from torchvision.datasets import CIFAR10

    _cifar_integrity(root, download)
    try:
        train, test = (CIFAR10(str(root), train=t, download=download) for t in (True, False))
    except Exception as exc:  # the download failed offline
        raise _missing("CIFAR-10", root / CIFAR_FOLDER, download, exc) from exc

    def chw(ds: CIFAR10) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), \
            torch.tensor(ds.targets, dtype=torch.long)

    return (*chw(train), *chw(test))


def load_digits_split() -> Arrays:
    """scikit-learn's 8 x 8 digits (values 0..16), a fixed seeded 80/20 train/test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_test = len(y) // 5
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


def make_synthetic(n_train: int, n_test: int, channels: int, size: int, n_classes: int,
                   seed: int) -> Arrays:
    """Seeded random images: a class prototype plus twice as much noise."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.randn(n_classes, channels, size, size, generator=gen)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(n_classes, (n,), generator=gen)
        return protos[y] + 2 * torch.randn(n, channels, size, size, generator=gen), y

    return (*draw(n_train), *draw(n_test))


def load_dataset(name: str, *, data_root: str = "", download: bool = False, seed: int = 0,
                 synthetic_shape: tuple[int, int, int] = (3, 32, 32),
                 synthetic_sizes: tuple[int, int] = (2048, 512)) -> Arrays:
    """The full train and test tensors of data set ``name`` (one of :data:`DATASETS`).

    ``synthetic_shape`` is ``(channels, image_size, n_classes)`` and ``synthetic_sizes`` the
    train and test sizes, both for ``synthetic`` only.
    """
    if name == "mnist":
        return load_mnist(resolve_root(data_root), download)
    if name == "cifar10":
        return load_cifar10(resolve_root(data_root), download)
    if name == "digits":
        return load_digits_split()
    if name == "synthetic":
        return make_synthetic(*synthetic_sizes, *synthetic_shape, seed=seed)
    raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")


def subset(x: torch.Tensor, y: torch.Tensor, n: int,
           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` samples (``0`` or ``n >= len``: all, in order)."""
    if n <= 0 or n >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=gen)[:n]
    return x[idx], y[idx]


def normalise(x_train: torch.Tensor,
              x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 images standardised per channel with the training set's mean and std."""
    x_train, x_test = x_train.float(), x_test.float()
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x_train - mean) / std, (x_test - mean) / std
