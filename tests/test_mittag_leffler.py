"""Tests for :func:`fdebench.engine.special.mittag_leffler`.

Every reference value is computed here, independently of the implementation, with mpmath:

* ``_series_ref``: the defining power series ``sum z^k / Gamma(a k + b)`` at ``_DPS`` digits plus
  ``log10`` of the largest term (~ ``exp(|z|^(1/a))``), so the alternating cancellation for
  ``z < 0`` cannot cost accuracy.  Used where that term count is modest.
* ``_cm_ref``: for ``beta = 1``, ``z = -x < 0``, ``0 < a < 1``, the completely monotone form
  ``E_a(-x) = int_0^inf K(r) exp(-r x^(1/a)) dr`` with
  ``K(r) = sin(a pi) r^(a-1) / (pi (r^(2a) + 2 r^a cos(a pi) + 1))``.
* ``_hankel_ref``: for any ``beta`` and ``z != 0``, ``0 < a < 1``, the Laplace-inverse of
  ``s^(a-b) / (s^a - z)`` with the Hankel contour collapsed onto the negative real axis, plus
  the residue of the pole ``z^(1/a)`` when ``z > 0`` (for ``b = 1, z < 0`` it is ``_cm_ref``
  after ``r -> r x^(1/a)``).
* closed forms: ``E_{1,1}(z) = exp(z)``, ``E_{1/2,1}(z) = exp(z^2) erfc(-z)``,
  ``E_{1,2}(z) = (exp(z) - 1) / z``.

The references are cross-checked against each other where they overlap.  The accuracy criterion
is ``|error| <= 1e-10 * max(1, |E|)``; values above the float64 range must come back as ``inf``.
"""

from __future__ import annotations

import doctest
import math
from functools import cache

import numpy as np
import pytest
import torch
from conftest import cuda_only

from fdebench.engine import special
from fdebench.engine.special import mittag_leffler

mp = pytest.importorskip("mpmath")

TOL = 1e-10
_DPS = 25  # digits of every reference (the criterion needs 10)
_DBL_MAX = 1.7976931348623157e308
_SERIES_MAX = 60.0  # series reference only while |z|^(1/a) (log of the largest term) <= this

ALPHAS = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
ZS = [-50.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 1.5, 2.0, 5.0]


# --------------------------------------------------------------------------- references


def _series_ref(alpha: float, beta: float, z: float):
    peak = abs(z) ** (1.0 / alpha) if z else 0.0  # the largest term is ~ exp(peak)
    extra = int(peak / 2.3) + 10
    with mp.workdps(_DPS + extra):
        a, b, x = mp.mpf(alpha), mp.mpf(beta), mp.mpf(z)
        tol = mp.mpf(10) ** (-(_DPS + extra))
        total, k = mp.mpf(0), 0
        while True:
            term = x**k * mp.rgamma(a * k + b)
            total += term
            if a * k + b > 2 and a * k > peak and abs(term) <= tol * (1 + abs(total)):
                return total
            k += 1


def _cm_ref(alpha: float, x: float):
    """``E_a(-x)``, split at ``r = 1``; ``t = r^a`` removes the ``r^(a-1)`` end singularity.

    The integrand becomes ``sin(a pi) exp(-(t x)^(1/a)) / (a pi (t^2 + 2 t cos(a pi) + 1))``;
    extra breakpoints at ``t = 1/x, 2/x`` where the exponential switches off.
    """
    with mp.workdps(_DPS + 10):
        a, xx = mp.mpf(alpha), mp.mpf(x)
        cos_a = mp.cospi(a)

        def f(t):
            return mp.exp(-((t * xx) ** (1 / a))) / (t * t + 2 * t * cos_a + 1)

        pts = [*sorted({mp.mpf(0), 1 / xx, 2 / xx, mp.mpf(1)}), mp.inf]
        return mp.sinpi(a) / (a * mp.pi) * mp.quad(f, pts)


def _hankel_ref(alpha: float, beta: float, z: float):
    """``E = [z > 0] s*^(1-b) e^s* / a + (1/pi) int_0^inf e^-r r^(a-b) N(r) / D(r) dr``.

    ``N = r^a sin(b pi) - z sin((b - a) pi)``, ``D = r^(2a) - 2 z r^a cos(a pi) + z^2``,
    ``s* = z^(1/a)``; valid for ``0 < b < 1 + a``, larger ``b`` use
    ``E_{a,b} = (E_{a,b-a} - 1/Gamma(b-a)) / z``.  ``r = t^p``, ``p = 1/(1 + a - b)`` makes the
    end singularity ``r^(a-b)`` disappear; breakpoints at ``r = 1`` and near ``r = |z|^(1/a)``
    (a near-pole when ``a -> 1``).
    """
    with mp.workdps(_DPS + 10):
        a, b, x = mp.mpf(alpha), mp.mpf(beta), mp.mpf(z)
        if b >= a + 1 - mp.mpf("1e-9"):
            return (_hankel_ref(alpha, b - a, z) - mp.rgamma(b - a)) / x
        p = 1 / (1 + a - b)
        sin_b, sin_ba, cos_a = mp.sinpi(b), mp.sinpi(b - a), mp.cospi(a)

        def f(t):
            r = t**p
            ra = r**a
            den = ra * ra - 2 * x * ra * cos_a + x * x
            return p * mp.exp(-r) * (ra * sin_b - x * sin_ba) / den

        rstar = abs(x) ** (1 / a)
        rs = {mp.mpf(1), mp.mpf(80)}
        if rstar < 80:
            rs |= {rstar / 2, rstar, 2 * rstar}
        pts = [mp.mpf(0), *sorted(r ** (1 / p) for r in rs), mp.inf]
        value = mp.quad(f, pts) / mp.pi
        if z > 0:
            value += mp.exp(rstar + (1 - b) * mp.log(rstar)) / a
        return value


@cache
def _reference(alpha: float, beta: float, z: float):
    if alpha == 1.0 or z == 0.0 or abs(z) ** (1.0 / alpha) <= _SERIES_MAX:
        return _series_ref(alpha, beta, z)
    if beta == 1.0 and z < 0:
        return _cm_ref(alpha, -z)
    return _hankel_ref(alpha, beta, z)


def _rel_err(value: float, ref) -> float:
    """Error in the units of the criterion; 0 for a correct ``inf``, ``inf`` if it is wrong."""
    if abs(ref) > _DBL_MAX:
        return 0.0 if value == math.inf else math.inf
    if not math.isfinite(value):
        return math.inf
    return float(abs(mp.mpf(value) - ref) / max(1, abs(ref)))


def _assert_close(value: float, ref, what: str) -> None:
    err = _rel_err(value, ref)
    assert err <= TOL, f"{what}: got {value!r}, reference {mp.nstr(ref, 17)}, error {err:.2e}"


# ------------------------------------------------------------------ reference cross-checks


@pytest.mark.parametrize(
    ("alpha", "z"),
    [(0.25, -1.5), (0.5, -3.0), (0.75, -5.0), (0.9, -10.0), (0.99, -3.0), (0.99, -30.0)],
    ids=lambda v: f"{v:g}",
)
def test_references_agree_beta1(alpha: float, z: float) -> None:
    with mp.workdps(_DPS):
        series = _series_ref(alpha, 1.0, z)
        for other in (_cm_ref(alpha, -z), _hankel_ref(alpha, 1.0, z)):
            assert abs(other - series) <= mp.mpf(10) ** (3 - _DPS) * max(1, abs(series))


@pytest.mark.parametrize(
    ("alpha", "beta", "z"),
    [
        (0.3, 0.3, -2.0),
        (0.3, 1.3, -2.0),
        (0.5, 2.0, 3.0),
        (0.9, 2.0, -5.0),
        (0.75, 0.75, 2.5),
        (0.25, 1.0, 1.5),
        (0.99, 1.99, -4.0),
    ],
    ids=lambda v: f"{v:g}",
)
def test_references_agree_beta(alpha: float, beta: float, z: float) -> None:
    with mp.workdps(_DPS):
        series = _series_ref(alpha, beta, z)
        hankel = _hankel_ref(alpha, beta, z)
        assert abs(hankel - series) <= mp.mpf(10) ** (3 - _DPS) * max(1, abs(series))


def test_reference_matches_erfc_closed_form() -> None:
    with mp.workdps(_DPS):
        for z in (-50.0, -3.0, 2.0):
            closed = mp.exp(mp.mpf(z) ** 2) * mp.erfc(-mp.mpf(z))
            assert abs(_hankel_ref(0.5, 1.0, z) - closed) <= mp.mpf(10) ** (3 - _DPS) * abs(closed)
            if z < 0:
                assert abs(_cm_ref(0.5, -z) - closed) <= mp.mpf(10) ** (3 - _DPS) * abs(closed)


# ------------------------------------------------------------------------- accuracy grids


def _grid(alphas, zs):
    return [pytest.param(a, z, id=f"a={a:g},z={z:g}") for a in alphas for z in zs]


@pytest.mark.parametrize(("alpha", "z"), _grid(ALPHAS, ZS))
def test_grid_beta1(alpha: float, z: float) -> None:
    _assert_close(mittag_leffler(alpha, z), _reference(alpha, 1.0, z), f"E_{alpha:g}({z:g})")


@pytest.mark.parametrize("beta_kind", ["alpha", "alpha+1", "2"])
@pytest.mark.parametrize(
    ("alpha", "z"),
    _grid([0.1, 0.5, 0.9, 0.99, 1.0], [-50.0, -10.0, -1.0, -1e-3, 0.0, 0.5, 2.0, 5.0]),
)
def test_grid_other_beta(alpha: float, z: float, beta_kind: str) -> None:
    beta = {"alpha": alpha, "alpha+1": alpha + 1.0, "2": 2.0}[beta_kind]
    ref = _reference(alpha, beta, z)
    _assert_close(mittag_leffler(alpha, z, beta), ref, f"E_{alpha:g},{beta:g}({z:g})")


@pytest.mark.parametrize("beta", [0.01, 1.0, 2.5], ids=lambda b: f"b={b:g}")
@pytest.mark.parametrize("alpha", [0.3, 0.75, 1.0], ids=lambda a: f"a={a:g}")
def test_contour_regime_boundaries(alpha: float, beta: float) -> None:
    """``z`` just around ``|z| = 1`` (series/contour switch) and around the poles
    ``z^(1/alpha) = 1, 2, 4`` where the parabola parameter changes."""
    stars = [1.0001, 1.9999, 2.0, 2.0001, 3.9999, 4.0, 4.0001]
    zs = [-1.0001, -1.0, -0.9999, 0.9999, 1.0, *(s**alpha for s in stars)]
    values = mittag_leffler(alpha, np.array(zs), beta)
    for z, v in zip(zs, values, strict=True):
        _assert_close(float(v), _series_ref(alpha, beta, z), f"E_{alpha:g},{beta:g}({z!r})")


@pytest.mark.parametrize("beta", [5.0, 20.0], ids=lambda b: f"b={b:g}")
def test_large_beta(beta: float) -> None:
    zs = [-20.0, -5.0, -1.5, 1.5, 5.0]
    values = mittag_leffler(0.9, np.array(zs), beta)
    for z, v in zip(zs, values, strict=True):
        _assert_close(float(v), _series_ref(0.9, beta, z), f"E_0.9,{beta:g}({z:g})")


@pytest.mark.parametrize("alpha", ALPHAS, ids=lambda a: f"a={a:g}")
def test_array_matches_scalar_and_reference(alpha: float) -> None:
    """One vectorised call over the grid (all regimes at once) equals the scalar calls."""
    zs = np.array(ZS)
    values = mittag_leffler(alpha, zs)
    assert values.shape == zs.shape
    scalars = np.array([mittag_leffler(alpha, float(z)) for z in zs])
    np.testing.assert_array_equal(values, scalars)
    worst = max(
        _rel_err(float(v), _reference(alpha, 1.0, float(z)))
        for v, z in zip(values, zs, strict=True)
    )
    assert worst <= TOL


# --------------------------------------------------------------------------- closed forms

_DENSE = np.concatenate([np.linspace(-50.0, 5.0, 45), [-1.0001, -0.9999, 0.9999, 1.0001, 0.0]])


def test_exp_closed_form() -> None:
    values = mittag_leffler(1.0, _DENSE)
    with mp.workdps(_DPS):
        for z, v in zip(_DENSE, values, strict=True):
            _assert_close(float(v), mp.exp(mp.mpf(z)), f"E_1({z:g})")


def test_erfc_closed_form() -> None:
    values = mittag_leffler(0.5, _DENSE)
    with mp.workdps(_DPS):
        for z, v in zip(_DENSE, values, strict=True):
            zz = mp.mpf(z)
            _assert_close(float(v), mp.exp(zz * zz) * mp.erfc(-zz), f"E_1/2({z:g})")
    for z, v in zip(_DENSE, values, strict=True):
        if abs(z) <= 20.0:  # float64 exp(z^2) overflows beyond ~26
            assert abs(v - math.exp(z * z) * math.erfc(-z)) <= 1e-12 * max(1.0, abs(v))


def test_e12_closed_form() -> None:
    values = mittag_leffler(1.0, _DENSE, beta=2.0)
    with mp.workdps(_DPS):
        for z, v in zip(_DENSE, values, strict=True):
            zz = mp.mpf(z)
            ref = mp.expm1(zz) / zz if z else mp.mpf(1)
            _assert_close(float(v), ref, f"E_1,2({z:g})")


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0], ids=lambda b: f"b={b:g}")
@pytest.mark.parametrize("alpha", ALPHAS, ids=lambda a: f"a={a:g}")
def test_recurrence_identity(alpha: float, beta: float) -> None:
    """``E_{a,b}(z) = 1/Gamma(b) + z E_{a,a+b}(z)``."""
    lhs = mittag_leffler(alpha, _DENSE, beta)
    rhs = 1.0 / math.gamma(beta) + _DENSE * mittag_leffler(alpha, _DENSE, alpha + beta)
    finite = np.isfinite(lhs)
    assert np.array_equal(finite, np.isfinite(rhs))
    err = np.abs(lhs[finite] - rhs[finite]) / np.maximum(1.0, np.abs(lhs[finite]))
    assert err.max() <= TOL


# ------------------------------------------------------------------------ types and shapes


def test_scalar_in_float_out() -> None:
    for z in (0.5, -3, np.float64(-2.0), np.float32(1.5), np.int64(-4)):
        out = mittag_leffler(0.5, z)
        assert type(out) is float
    assert mittag_leffler(0.7, 0.0) == pytest.approx(1.0, abs=1e-15)
    assert mittag_leffler(0.7, 0.0, beta=2.0) == pytest.approx(1.0, abs=1e-15)


def test_ndarray_shape_preserved() -> None:
    z = np.linspace(-50.0, 5.0, 24).reshape(2, 3, 4)
    out = mittag_leffler(0.6, z, beta=1.3)
    assert isinstance(out, np.ndarray)
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.float64
    assert out[1, 2, 3] == mittag_leffler(0.6, float(z[1, 2, 3]), beta=1.3)
    zero_d = mittag_leffler(0.6, np.array(-2.0))
    assert isinstance(zero_d, np.ndarray)
    assert zero_d.shape == ()
    assert mittag_leffler(1.0, np.array(-2.0)).shape == ()
    assert mittag_leffler(0.6, np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_torch_tensor_dtype_and_shape(dtype: torch.dtype) -> None:
    z = torch.linspace(-50.0, 5.0, 12, dtype=dtype).reshape(3, 4)
    out = mittag_leffler(0.8, z)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype
    assert out.shape == (3, 4)
    assert out.device == z.device
    expected = mittag_leffler(0.8, z.double().numpy())
    rtol = 1e-6 if dtype == torch.float32 else 0.0
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=rtol)


def test_torch_requires_grad_and_scalar_tensor() -> None:
    z = torch.tensor([-1.0, 2.0], requires_grad=True)
    out = mittag_leffler(0.5, z)
    assert out.shape == (2,)
    zero_d = mittag_leffler(0.5, torch.tensor(-1.0, dtype=torch.float64))
    assert zero_d.shape == ()
    assert float(zero_d) == pytest.approx(math.e * math.erfc(1.0), rel=1e-13)


@cuda_only
def test_torch_cuda_device_preserved() -> None:
    z = torch.linspace(-5.0, 2.0, 8, device="cuda", dtype=torch.float32)
    out = mittag_leffler(0.9, z)
    assert out.device == z.device
    assert out.dtype == torch.float32


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5, math.nan], ids=str)
def test_invalid_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\], got " + repr(alpha)):
        mittag_leffler(alpha, 0.5)


@pytest.mark.parametrize("beta", [0.0, -1.0, math.inf], ids=str)
def test_invalid_beta(beta: float) -> None:
    with pytest.raises(ValueError, match="beta .*got " + repr(beta)):
        mittag_leffler(0.5, 0.5, beta)


@pytest.mark.parametrize(
    "z",
    [1 + 2j, np.array([1.0 + 0j, 2.0]), torch.tensor([1.0 + 1j])],
    ids=["complex", "ndarray", "tensor"],
)
def test_complex_z_rejected(z) -> None:
    with pytest.raises(ValueError, match="real z only"):
        mittag_leffler(0.5, z)


def test_complex_scalar_message_names_value() -> None:
    with pytest.raises(ValueError, match=r"\(1\+2j\)"):
        mittag_leffler(0.5, 1 + 2j)


# ------------------------------------------------------------------- overflow and specials


@pytest.mark.parametrize("beta", [0.1, 1.0, 2.0, 3.0], ids=lambda b: f"b={b:g}")
def test_overflow_returns_inf(beta: float) -> None:
    assert mittag_leffler(0.1, 5.0, beta) == math.inf
    out = mittag_leffler(0.1, np.array([5.0, 2.0, 1.5, -50.0]), beta)
    assert out[0] == math.inf and out[1] == math.inf
    assert np.all(np.isfinite(out[2:]))


def test_non_finite_inputs() -> None:
    out = mittag_leffler(0.5, np.array([math.inf, -math.inf, math.nan]))
    assert out[0] == math.inf
    assert out[1] == 0.0
    assert math.isnan(out[2])


def test_docstring_examples() -> None:
    result = doctest.testmod(special, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
