"""Every method x gradient mode on CUDA against the same solve on the CPU (float64): the engine
is device-agnostic, so the two agree to rounding.  Skipped without a GPU; run by
``benchmarks/gpu_check.sh`` (``-m cuda``)."""

from __future__ import annotations

import pytest
import torch
from conftest import TimeMLP, cuda_only

from fdebench.engine import GRADIENTS, METHODS, fdeint, refusal

# what fdeint runs with its default history (below alpha = 1, revolve needs history="soe")
CASES = [(m, a, g) for a in (0.5, 1.0) for m in METHODS for g in GRADIENTS
         if refusal(m, g, a) is None]


def _gradients(device: str, method: str, alpha: float, gradient: str) -> torch.Tensor:
    field = TimeMLP().to(device)
    y0 = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y0 = y0.to(device).requires_grad_()
    t = torch.tensor([0.0, 0.37, 1.0], dtype=torch.float64, device=device)  # 0.37: off the grid
    ys = fdeint(field, y0, t, alpha=alpha, method=method, gradient=gradient, step_size=0.02)
    loss = ys.square().sum()
    grads = torch.autograd.grad(loss, [y0, *field.parameters()])
    return torch.cat([ys.detach().reshape(-1), *(g.reshape(-1) for g in grads)]).cpu()


@cuda_only
@pytest.mark.parametrize(("method", "alpha", "gradient"), CASES,
                         ids=[f"{m}-alpha{a}-{g}" for m, a, g in CASES])
def test_cuda_matches_cpu(method, alpha, gradient):
    cpu = _gradients("cpu", method, alpha, gradient)
    cuda = _gradients("cuda", method, alpha, gradient)
    assert ((cuda - cpu).norm() / cpu.norm()).item() < 1e-10
