"""Products of a Toeplitz matrix with a tall matrix, the building block of the fast history sums.

``out += T @ rows`` where ``rows`` is ``S x |y|``, ``out`` is ``K x B x |y|`` (``K`` kernels at
once) and ``T[k, a, b] = weights[k, a - b + S - 1]`` (a Toeplitz matrix given by its
``S + B - 1`` diagonals).  With ``flip`` the rows of the product are added to ``out`` in reversed
order.  Two algorithms, the same sums up to rounding:

* :func:`dense_product`: the matrix is formed and multiplied (one BLAS-3 product, ``S B |y|``
  multiply-adds), in source chunks when the matrix would not fit the workspace.
* :func:`block_product`: the product as a convolution of ``b x b`` Toeplitz *blocks* along the
  block index, evaluated by a discrete Fourier transform over the block index (the block-Toeplitz
  FFT products of Hairer, Lubich & Schlichte, SIAM J. Sci. Stat. Comput. 6:532-541, 1985, with
  matrix-valued coefficients).  With ``k_s = S / b`` source and ``k_t = B / b`` target blocks and
  ``M = k_s + k_t - 1`` frequencies (a circular convolution of length ``M`` holds the linear one
  exactly), the transforms are small real DFT matrices applied by matrix products, so every step
  is BLAS-3: ``~(k_s + k_t)^2 b + 2 (k_s + k_t) b^2`` multiply-adds per column instead of
  ``S B``; with ``b ~ sqrt(S + B)`` that is ``O((S + B)^1.5)``.  (On this project's CPU
  ``torch.fft`` along the time axis of the row-major history ran at about a tenth of the speed
  of a matrix product, so the block index is transformed by matrix products; for the block
  counts used here, up to ~200, that is also the faster choice.)  Measured on one CPU thread,
  ``|y| = 8192``, float32, 512 columns: 1.5x faster than dense at ``S = B = 512``, 2.5x at
1024, 3.6x at 2048 (0.7x at 256: hence ``block_min`` = 384 in :mod:`fdebench.engine.history`).
"""

from __future__ import annotations

import math

import torch

__all__ = ["block_product", "block_size", "block_workspace", "dense_product"]


def dense_product(weights: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, flip: bool,
                  workspace: int) -> None:
    """``out += T @ rows`` by forming ``T`` (in source chunks of at most ``workspace`` entries)."""
    sources, targets, k = rows.shape[0], out.shape[1], out.shape[0]
    chunk = max(1, workspace // (2 * k * targets))
    for c0 in range(0, sources, chunk):
        c1 = min(c0 + chunk, sources)
        # rows [c0, c1) take weights[a - b + S - 1] for b in [c0, c1): the slice from S - c1
        part = weights[:, sources - c1 : sources - c1 + (c1 - c0) + targets - 1]
        # unfold: U[r, b] = w[S + B - 2 - r - b] of the flipped weights: row r is output B-1-r
        toeplitz = part.flip(-1).unfold(-1, c1 - c0, 1)
        toeplitz = toeplitz if flip else toeplitz.flip(-2)
        out.baddbmm_(toeplitz, rows[c0:c1].expand(k, -1, -1))


def block_size(sources: int, targets: int) -> int:
    """The block length ``b`` of :func:`block_product`: about ``sqrt((S + B) / 2)``, 32 or 64."""
    return 64 if sources + targets > 5000 else 32


def _blocks(sources: int, targets: int, block: int) -> tuple[int, int, int, int]:
    ks, kt = -(-sources // block), -(-targets // block)
    frequencies = ks + kt - 1
    return ks, kt, frequencies, frequencies // 2 + 1


#: frequencies per chunk of :func:`block_product` (bounds its per-column workspace)
FREQUENCY_CHUNK = 16


def block_workspace(sources: int, targets: int, k: int, block: int) -> tuple[int, int]:
    """Entries :func:`block_product` holds: ``(fixed, per column of |y|)``."""
    ks, kt, m, f = _blocks(sources, targets, block)
    fc = min(f, FREQUENCY_CHUNK)
    # spectra (4 K F b^2) while the K M b^2 blocks and one K F b^2 product exist
    fixed = k * block * block * (m + 5 * f) + 4 * f * (ks + kt)
    per_column = block * (ks + 2 * k * kt + 2 * fc * (1 + k))
    return fixed, per_column


def block_product(weights: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, flip: bool,
                  block: int, columns: int) -> None:
    """``out += T @ rows`` through a DFT over the index of ``block x block`` Toeplitz blocks.

    ``Y_I = sum_J T_{I-J} X_J`` (blocks of ``block`` rows; ``T_d[a, b] = weights[d block + a - b
    + S - 1]``, zero outside the diagonals) becomes ``Y^_f = T^_f X^_f`` per frequency ``f`` of a
    length-``M`` DFT; real data, so only ``f <= M / 2`` (Hermitian symmetry), and each complex
    product is one real product with ``[[Re, -Im], [Im, Re]]``.  ``columns`` of ``|y|`` at a time,
    the frequencies in chunks (each chunk's share of the inverse DFT is accumulated).
    """
    k, (sources, numel), targets = out.shape[0], rows.shape, out.shape[1]
    ks, kt, m, f = _blocks(sources, targets, block)
    forward, inverse = _dft_matrices(ks, kt, m, f, rows.dtype, rows.device)
    spectra = _block_spectra(weights, sources, block, ks, kt, m, f)  # (K, F, 2b, 2b)
    padded = rows.new_zeros(ks * block, columns)
    result = rows.new_empty(k, kt * block, columns)
    for c0 in range(0, numel, columns):
        width = min(columns, numel - c0)
        x = padded if width == columns else rows.new_zeros(ks * block, width)
        y = result if width == columns else rows.new_empty(k, kt * block, width)
        x[:sources].copy_(rows[:, c0 : c0 + width])
        x, y_blocks = x.view(ks, block * width), y.view(k, kt, block * width)
        for f0 in range(0, f, FREQUENCY_CHUNK):
            f1 = min(f0 + FREQUENCY_CHUNK, f)
            x_hat = (forward[2 * f0 : 2 * f1] @ x).view(f1 - f0, 2 * block, width)
            y_hat = torch.matmul(spectra[:, f0:f1], x_hat).view(k, 2 * (f1 - f0), -1)
            y_blocks.baddbmm_(inverse[:, 2 * f0 : 2 * f1].expand(k, -1, -1), y_hat,
                              beta=1.0 if f0 else 0.0)
        y = y[:, :targets]
        out[:, :, c0 : c0 + width] += y.flip(1) if flip else y


def _dft_matrices(ks, kt, m, f, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The real DFT of length ``m`` of ``ks`` blocks, rows ``(f, re/im)``, and its inverse for
    ``kt`` blocks from the ``f`` non-redundant frequencies (computed in float64)."""
    freq = torch.arange(f, dtype=torch.float64)
    index = torch.arange(max(ks, kt), dtype=torch.float64)
    angle = (2 * math.pi / m) * torch.outer(freq, index)  # (F, max(ks, kt))
    cos, sin = angle.cos(), angle.sin()
    forward = torch.stack([cos[:, :ks], -sin[:, :ks]], 1).reshape(2 * f, ks)
    weight = torch.full((f,), 2.0 / m, dtype=torch.float64)  # conjugate frequencies folded in
    weight[0] = 1.0 / m
    if m % 2 == 0:
        weight[-1] = 1.0 / m
    inverse = torch.stack([cos[:, :kt].t() * weight, -sin[:, :kt].t() * weight], 2)
    return (forward.to(dtype=dtype, device=device),
            inverse.reshape(kt, 2 * f).to(dtype=dtype, device=device))


def _block_spectra(weights, sources, block, ks, kt, m, f) -> torch.Tensor:
    """``[[Re T^_f, -Im T^_f], [Im T^_f, Re T^_f]]`` for each kernel and frequency."""
    k, b = weights.shape[0], block
    # windows of 2b - 1 diagonals, one per block lag d = I - J in [-(ks - 1), kt - 1]: T_d uses
    # weights[d b + S - b ... d b + S + b - 2]; pad so that every window is inside
    pad = ks * b - sources + b
    padded = torch.nn.functional.pad(weights, (pad, kt * b + b))
    start = pad + sources - ks * b  # = index of weights[-(ks - 1) b + S - b]
    windows = padded[:, start:].unfold(-1, 2 * b - 1, b)[:, :m]  # (K, M, 2b - 1)
    # T_d[a, c] = window[a - c + b - 1]: unfold the reversed window, then reverse the rows
    blocks = windows.flip(-1).unfold(-1, b, 1).flip(-2).reshape(k, m, b * b)
    lag = torch.arange(-(ks - 1), kt, dtype=torch.float64)
    angle = (2 * math.pi / m) * torch.outer(torch.arange(f, dtype=torch.float64), lag)
    spectra = weights.new_empty(k, f, 2 * b, 2 * b)
    real = (angle.cos().to(weights) @ blocks).view(k, f, b, b)
    spectra[:, :, :b, :b] = real
    spectra[:, :, b:, b:] = real
    del real
    sine = (angle.sin().to(weights) @ blocks).view(k, f, b, b)  # Im T^_f = -sine
    spectra[:, :, :b, b:] = sine
    spectra[:, :, b:, :b] = -sine
    return spectra
