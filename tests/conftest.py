import sys
from pathlib import Path

import pytest
import torch

# The repository root, for ``import benchmarks`` (tests/test_gate.py) under a bare ``pytest`` too
# (``python -m pytest`` puts the working directory on the path by itself).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: a test that needs a GPU: skipped without one, selected by ``-m cuda``
#: (``benchmarks/gpu_check.sh`` runs exactly these)
CUDA_ONLY = [pytest.mark.cuda,
             pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def cuda_only(test):
    """Decorator: :data:`CUDA_ONLY`."""
    for mark in reversed(CUDA_ONLY):
        test = mark(test)
    return test


class TimeMLP(torch.nn.Module):
    """A small time-dependent field ``tanh(y W1 + t b) W2`` for gradient tests."""

    def __init__(self, dim: int = 3, hidden: int = 5, dtype=torch.float64, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = torch.nn.Parameter(torch.randn(dim, hidden, generator=g, dtype=dtype) / dim)
        self.b = torch.nn.Parameter(torch.randn(hidden, generator=g, dtype=dtype))
        self.w2 = torch.nn.Parameter(torch.randn(hidden, dim, generator=g, dtype=dtype) / hidden)

    def forward(self, t, y):
        return torch.tanh(y @ self.w1 + t * self.b) @ self.w2


@pytest.fixture
def products(monkeypatch):
    """Counts of the Toeplitz products the fast history ran, by kind."""
    from fdebench.engine import toeplitz

    counts = {"dense": 0, "block": 0}

    def counting(kind, product):
        def wrapped(*args):
            counts[kind] += 1
            return product(*args)
        return wrapped

    monkeypatch.setattr(toeplitz, "dense_product", counting("dense", toeplitz.dense_product))
    monkeypatch.setattr(toeplitz, "block_product", counting("block", toeplitz.block_product))
    return counts


@pytest.fixture
def one_thread():
    """One intra-op thread for the test (small products: more threads only add
    synchronisation on 2 shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def field():
    return TimeMLP()
