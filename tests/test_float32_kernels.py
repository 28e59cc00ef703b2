"""float32 analytic kernels against float64: the closed-form kernel maps, and a grid of
depths × weight scales × activations (plus ReLU CNNs), as users run them in float32.

What is checked, and why these tolerances:

* Kernel maps on their own (``kernel_fns``) at float32 inputs ``(k, v1, v2)`` against an
  independent float64 evaluation of the textbook closed form at the same (exactly
  representable) inputs. Errors are normalised by the diagonal scale ``sqrt(T(v1) T(v2))``
  (an off-diagonal entry can be ~0, where no relative error is meaningful). The float32
  rounding of the inputs alone moves T by about ``eps32 · b² · sqrt(v1 v2) ≲ 1e-5`` for the
  variances used (≤ 100 for the sinusoids; the Gelu map is Lipschitz in ``log v``), so the
  required 1e-4 leaves a margin of ~10 for the arithmetic.
* The grid: NNGP and NTK of ``serial((Dense(8, W_std, b_std=0.1), act) × depth, Dense(1))``
  for W_std in {0.5, ..., 10} and depth in {1, ..., 50} on 6 random points in d = 5, and of
  Conv(3×3)+ReLU stacks read out by GlobalAvgPool or Flatten. Where the float64 kernel is
  representable in float32, float32 must have no NaN/inf, be PSD beyond roundoff and agree
  with float64 to ``GRID_RTOL`` (entries normalised by ``sqrt(K_ii K_jj)``); see
  :func:`check_cell` for the bounds and their justification.

Chaotic phase, measured (benchmarks/float32_grid.py): for these random inputs the depth-50
chaotic cells are as accurate as the others, because the off-diagonal correlations contract
to a stable fixed point ρ* < 1 and only ρ = 1 is expanding (kept exact by ``correlation``'s
snapping). The exponential sensitivity is real for near-duplicate inputs: 1 - ρ grows by the
slope χ₁ > 1 per layer, float32 knows it only to ~eps32 absolute (and snaps it to 0 below
8 eps32), so the error grows like ``eps32 / (1 - ρ_1) · (1 - ρ_L)`` until the pair
decorrelates. For a pair at distance 1e-3 (1 - ρ ≈ 1e-6 after one layer) at W_std = 3
float32 all but merges the two inputs: the error reaches 0.4 at depth 10 (Sin) or 20 (Erf)
and 0.99 at depth 50 (Erf), although float64 resolves them; at distance 1e-2 it peaks at
~1e-4. No kernel map can fix
this: the float32 covariances do not determine 1 - ρ below eps32. Such pairs are not in the
grid; the benchmark prints them.

The grid is computed in one compiled program per architecture and precision: ``jax.vmap``
over W_std and ``jax.lax.scan`` over depth (the layers' ``kernel`` methods, the same
functions ``nnlab.kernel`` composes; :func:`test_depth_kernels_match_nnlab_kernel` checks
the two agree). ``benchmarks/float32_grid.py`` prints the whole table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnlab
from nnlab import layers as nl
from nnlab.kernels._compute import requires_full_spatial
from nnlab.kernels._kernel import input_kernel

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7
F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)

W_STDS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
DEPTHS = (1, 2, 5, 10, 20, 50)
B_STD = 0.1
N_POINTS = 6


# ----------------------------------------------------------------------------- grid machinery


def mlp_inputs() -> np.ndarray:
    """6 standard normal points in d = 5, as float32 (so float64 sees the same numbers)."""
    return np.asarray(jax.random.normal(jax.random.key(0), (N_POINTS, 5)), np.float32)


def cnn_inputs() -> np.ndarray:
    """6 standard normal 4×4 images with 2 channels, float32."""
    return np.asarray(jax.random.normal(jax.random.key(1), (N_POINTS, 4, 4, 2)), np.float32)


def mlp(act):
    """(block, readout, inputs) of the MLP with activation ``act``."""
    return (
        lambda w: nl.serial(nl.Dense(8, W_std=w, b_std=B_STD), act),
        lambda w: nl.Dense(1, W_std=w, b_std=B_STD),
        mlp_inputs,
    )


def cnn(readout_layer):
    """(block, readout, inputs) of a Conv(8, 3×3, SAME)+ReLU stack with the given readout."""
    return (
        lambda w: nl.serial(nl.Conv(8, (3, 3), W_std=w, b_std=B_STD), nl.Relu()),
        lambda w: nl.serial(readout_layer, nl.Dense(1, W_std=w, b_std=B_STD)),
        cnn_inputs,
    )


ARCHITECTURES = {
    "Relu": mlp(nl.Relu()),
    "Erf": mlp(nl.Erf()),
    "Tanh": mlp(nl.Tanh()),
    "Gelu": mlp(nl.Gelu()),
    "Sin": mlp(nl.Sin()),
    "Cos": mlp(nl.Cos()),
    "Rbf": mlp(nl.Rbf()),
    "CNN-GAP": cnn(nl.GlobalAvgPool()),
    "CNN-Flatten": cnn(nl.Flatten()),
}


def depth_kernels(block, readout, x, w_stds, depths):
    """NNGP and NTK of ``serial(block(w) × depth, readout(w))`` for every w and depth.

    One compiled program: ``vmap`` over ``w``, ``lax.scan`` over depth (compile time does
    not grow with depth, unlike an unrolled 50-layer ``serial``). Computed in ``x``'s dtype.
    Returns two numpy arrays of shape ``(len(w_stds), len(depths), N, N)``.
    """
    max_depth = max(depths)
    diagonal = not requires_full_spatial(nl.serial(block(1.0), readout(1.0)))

    def one(w):
        blk, out = block(w), readout(w)
        k = blk.kernel(input_kernel(x, diagonal_spatial=diagonal))

        def body(k, _):
            r = out.kernel(k)
            return blk.kernel(k), (r.nngp, r.ntk)

        _, (nngp, ntk) = jax.lax.scan(body, k, None, length=max_depth)
        return nngp, ntk

    nngp, ntk = jax.jit(jax.vmap(one))(jnp.asarray(w_stds, x.dtype))
    idx = np.asarray(depths) - 1
    return np.asarray(nngp)[:, idx], np.asarray(ntk)[:, idx]


def grid(name, w_stds=W_STDS, depths=DEPTHS):
    """``{"nngp": (k32, k64), "ntk": (k32, k64)}`` for architecture ``name``."""
    block, readout, inputs = ARCHITECTURES[name]
    x = inputs()
    k32 = depth_kernels(block, readout, jnp.asarray(x, jnp.float32), w_stds, depths)
    assert k32[0].dtype == np.float32
    with jax.enable_x64(True):
        k64 = depth_kernels(block, readout, jnp.asarray(x, jnp.float64), w_stds, depths)
    assert k64[0].dtype == np.float64
    return {"nngp": (k32[0], k64[0]), "ntk": (k32[1], k64[1])}


def cell_stats(k32: np.ndarray, k64: np.ndarray) -> dict:
    """Float32-vs-float64 statistics of one (N, N) kernel.

    ``representable``: the float64 kernel is finite and inside float32's normal range
    (otherwise float32 cannot hold it and the other entries are None). ``err``: the largest
    ``|K32 - K64| / sqrt(K64_ii K64_jj)``. ``bad``: float32 entries that are NaN/inf.
    ``min_eig``: the smallest eigenvalue of K32 over its largest (float64 ``min_eig64``).
    """
    representable = bool(
        np.all(np.isfinite(k64))
        and np.abs(k64).max() < F32_MAX / 8
        and np.diag(k64).min() > F32_TINY / EPS32
    )
    stats = {"representable": representable, "err": None, "bad": None, "min_eig": None}
    if not representable:
        return stats
    k32 = np.asarray(k32, np.float64)
    stats["bad"] = int(np.sum(~np.isfinite(k32)))
    if stats["bad"]:
        return stats
    d = np.sqrt(np.diag(k64))
    stats["err"] = float(np.max(np.abs(k32 - k64) / np.outer(d, d)))
    e32, e64 = np.linalg.eigvalsh(k32), np.linalg.eigvalsh(k64)
    stats["min_eig"] = float(e32[0] / e32[-1])
    stats["min_eig64"] = float(e64[0] / e64[-1])
    return stats


# Activations whose kernel is an arc-cosine of ρ (kinked φ): ReLU and the ReLU CNNs.
ARCCOS = ("Relu", "CNN-GAP", "CNN-Flatten")


def grid_rtol(name: str, depth: int) -> float:
    """Bound on the normalised float32 error of a depth-``depth`` kernel of ``name``.

    Each layer rounds its outputs (relative ``eps32``) and its kernel map adds a few ulps.
    For these random inputs the correlation map contracts the off-diagonal correlations
    towards their fixed point (slope < 1 there; in the chaotic phase the slope exceeds 1 only
    at ρ = 1, and the diagonal is kept exact by ``correlation``'s snapping), so errors add up
    over layers instead of multiplying, and the NTK sums ``depth`` such terms:
    ``16 · eps32 · (depth + 1)`` (~1e-4 at depth 50). Measured (benchmarks/float32_grid.py):
    at most 4 · eps32 · (depth + 1) for the smooth activations, a margin of 4.

    Arc-cosine kernels (ReLU) add a floor ``sqrt(eps32)`` (3.4e-4): ``Ṫ = (π - θ)/(2π)`` with
    ``θ = arccos ρ`` has ``dθ/dρ = 1/sin θ``, so near ρ = 1 the one-ulp rounding of the
    float32 ρ is an error ``eps/θ`` in θ, up to ``~sqrt(eps)`` at the edge of the snapping band
    ``1 - ρ = 8 eps``. Deep ordered-phase networks drive every pair's ρ through that band
    (the kernel becomes rank one): measured up to 0.4 · sqrt(eps32) (CNN-Flatten, W_std = 1,
    depth 20 NTK). This is float32's resolution of ``1 - ρ``, not a bug of a kernel map: the
    float32 covariances do not determine ``1 - ρ ~ eps`` better than that.
    """
    rtol = 16 * EPS32 * (depth + 1)
    return rtol + np.sqrt(EPS32) if name in ARCCOS else rtol


def psd_tol(name: str, depth: int) -> float:
    """Non-PSD beyond roundoff: ``λ_min(K32) < -psd_tol · λ_max(K32)``.

    By Weyl, ``λ_min(K32) ≥ λ_min(K64) - ||K32 - K64||_2`` and
    ``||K32 - K64||_2 ≤ N · max_ij |K32 - K64|_ij ≤ N · grid_rtol · max_i K_ii
    ≤ N · grid_rtol · λ_max``; float64 kernels are PSD to ~1e-15 (deep ordered-phase
    kernels are rank one to that accuracy). Hence ``N · grid_rtol``.
    """
    return N_POINTS * grid_rtol(name, depth)


def check_cell(name: str, field: str, w: float, depth: int, k32, k64) -> None:
    s = cell_stats(k32, k64)
    where = f"{name} {field} W_std={w} depth={depth}"
    if not s["representable"]:
        return
    assert s["bad"] == 0, f"{where}: {s['bad']} NaN/inf entries in float32, float64 finite"
    assert s["err"] <= grid_rtol(name, depth), f"{where}: error {s['err']:.2e}"
    assert s["min_eig"] >= -psd_tol(name, depth), f"{where}: λmin/λmax = {s['min_eig']:.2e}"


def check_grid(name, w_stds=W_STDS, depths=DEPTHS):
    kernels = grid(name, w_stds, depths)
    for field, (k32, k64) in kernels.items():
        for i, w in enumerate(w_stds):
            for j, depth in enumerate(depths):
                check_cell(name, field, w, depth, k32[i, j], k64[i, j])
    return kernels


# ----------------------------------------------------------------------------- the machinery


def test_depth_kernels_match_nnlab_kernel(x64):
    """The scan/vmap grid gives nnlab.kernel's numbers (float64, so rounding is ~1e-15)."""
    for name, depths in (("Sin", (2,)), ("CNN-GAP", (1,))):
        block, readout, inputs = ARCHITECTURES[name]
        x = jnp.asarray(inputs(), jnp.float64)
        nngp, ntk = depth_kernels(block, readout, x, (0.5, 3.0), depths)
        for i, w in enumerate((0.5, 3.0)):
            for j, depth in enumerate(depths):
                k = nnlab.kernel(nl.serial(*[block(w)] * depth, readout(w)), x)
                np.testing.assert_allclose(nngp[i, j], k.nngp, rtol=1e-12, err_msg=name)
                np.testing.assert_allclose(ntk[i, j], k.ntk, rtol=1e-12, err_msg=name)


# ----------------------------------------------------------------------------- kernel maps


def _pairs(variances, rhos):
    """float32 (k, v1, v2) on a grid, k = ρ sqrt(v1 v2) rounded to float32."""
    v1, v2, rho = (a.ravel() for a in np.meshgrid(variances, variances, rhos, indexing="ij"))
    v1, v2 = v1.astype(np.float32), v2.astype(np.float32)
    k = (rho * np.sqrt(v1.astype(np.float64) * v2)).astype(np.float32)
    return k, v1, v2


def _clip64(k, v1, v2):
    """float64 copies with k clipped to Cauchy-Schwarz (float32 rounding can break it)."""
    k, v1, v2 = (np.asarray(a, np.float64) for a in (k, v1, v2))
    s = np.sqrt(v1 * v2)
    return np.clip(k, -s, s), v1, v2


def _normalised_error(got, want, diag1, diag2):
    return np.abs(np.asarray(got, np.float64) - want) / np.sqrt(diag1 * diag2)


RHOS = np.array([-1.0, -0.9999, -0.99, -0.5, -1e-3, 0.0, 1e-3, 0.3, 0.99, 0.9999, 1.0])


def _sinusoid_reference(k, v1, v2, a, b, c):
    """T, Ṫ of ``a sin(b x + c)`` in float64 (Pearce et al. 2019; characteristic function)."""
    b2 = b * b
    diff = np.exp(-0.5 * b2 * (v1 + v2 - 2 * k))
    summ = np.exp(-0.5 * b2 * (v1 + v2 + 2 * k))
    return 0.5 * a * a * (diff - np.cos(2 * c) * summ), 0.5 * a * a * b2 * (
        diff + np.cos(2 * c) * summ
    )


SINUSOIDS = {
    "Sin": (nl.Sin(), (1.0, 1.0, 0.0)),
    "Cos": (nl.Cos(), (1.0, 1.0, np.pi / 2)),
    "Sin(a,b,c)": (nl.Sin(a=0.7, b=1.3, c=0.4), (0.7, 1.3, 0.4)),
    "Cos(a,b,c)": (nl.Cos(a=0.5, b=0.8, c=-0.3), (0.5, 0.8, -0.3 + np.pi / 2)),
    "Rbf": (nl.Rbf(gamma=0.7), (np.sqrt(2.0), np.sqrt(1.4), np.pi / 4)),
}


@pytest.mark.parametrize("name", list(SINUSOIDS))
def test_sinusoid_kernel_maps_float32(name):
    """float32 T and Ṫ of Sin/Cos/Rbf within 1e-4 (normalised) of float64, v in [1e-6, 100].

    The old form ``(diff - summ)/2`` cancels for small variances and small ``|k|`` (T of a
    variance-1e-6 diagonal came out 3% off); the fixed form evaluates the difference of
    exponentials with ``expm1`` of the exponent gap and reads ``k`` through ``correlation``.
    """
    act, (a, b, c) = SINUSOIDS[name]
    k, v1, v2 = _pairs(np.array([1e-6, 1e-3, 0.1, 1.0, 4.5, 30.0, 100.0]), RHOS)
    t32, d32 = act.kernel_fns(jnp.asarray(k), jnp.asarray(v1), jnp.asarray(v2), True)
    assert t32.dtype == jnp.float32 and d32.dtype == jnp.float32
    k64, v164, v264 = _clip64(k, v1, v2)
    t, d = _sinusoid_reference(k64, v164, v264, a, b, c)
    t11, d11 = _sinusoid_reference(v164, v164, v164, a, b, c)
    t22, d22 = _sinusoid_reference(v264, v264, v264, a, b, c)
    assert _normalised_error(t32, t, t11, t22).max() <= 1e-4
    assert _normalised_error(d32, d, d11, d22).max() <= 1e-4


def _gelu_reference(c, v1, v2):
    """T, Ṫ of the exact GELU in float64 (Tsuchida et al. 2021, arXiv:2002.08517).

    ``Δ = (1 + v1)(1 + v2) - c² = 1 + v1 + v2 + v1 v2 (1 - ρ²)`` (exact algebra, no
    cancellation) and ``arcsin(c / S) = atan2(c, sqrt(Δ))``, accurate near ``|ρ| = 1``.
    """
    s2 = (1 + v1) * (1 + v2)
    rho = c / np.sqrt(v1 * v2)
    delta = 1 + v1 + v2 + v1 * v2 * (1 - rho) * (1 + rho)
    orthant = 0.25 + np.arctan2(c, np.sqrt(delta)) / (2 * np.pi)
    t = c * orthant + (v1 * v2 * s2 + c * c * (1 - v1 * v2)) / (2 * np.pi * s2 * np.sqrt(delta))
    tdot = orthant + c * ((2 + v1 + v2) * delta + s2) / (2 * np.pi * s2 * delta**1.5)
    return t, tdot


def test_gelu_kernel_map_float32():
    """float32 Gelu T and Ṫ within 1e-4 (normalised) of float64 for v in [1e-6, 1e12]."""
    k, v1, v2 = _pairs(np.array([1e-6, 1e-3, 0.1, 1.0, 30.0, 1e3, 1e5, 1e7, 1e9, 1e12]), RHOS)
    t32, d32 = nl.Gelu().kernel_fns(jnp.asarray(k), jnp.asarray(v1), jnp.asarray(v2), True)
    k64, v164, v264 = _clip64(k, v1, v2)
    t, d = _gelu_reference(k64, v164, v264)
    t11, d11 = _gelu_reference(v164, v164, v164)
    t22, d22 = _gelu_reference(v264, v264, v264)
    assert _normalised_error(t32, t, t11, t22).max() <= 1e-4
    assert _normalised_error(d32, d, d11, d22).max() <= 1e-4


DIAGONAL_VARIANCES = np.logspace(-6, 14, 81).astype(np.float32)


def test_gelu_diagonal_float32():
    """On the diagonal (c = v1 = v2, ρ = 1) float32 Gelu T and Ṫ are within 16 eps32.

    The NTK multiplies one Ṫ per layer, so its diagonal carries the sum of their errors. Before
    the fix the arcsine of ``r = v/(1+v)`` was taken of the rounded ``r``: for ``v ~ 1e7`` one
    ulp of ``r`` is ~50% of ``1 - r`` and ``Ṫ`` was off by 4e-5 per layer (7e-3 over a deep
    net), and ``v/(1+v) = 1 - 1/(1+v)`` lost ``eps/v`` for small ``v``. Now ``arccos`` is taken
    of ``sqrt(1 - r²) = sqrt(b (2 - b))``, ``b = 1/(1+v)``, known to a few ulps: hence 16 eps.
    """
    v = jnp.asarray(DIAGONAL_VARIANCES)
    t32, d32 = nl.Gelu().kernel_fns(v, v, v, True)
    v64 = DIAGONAL_VARIANCES.astype(np.float64)
    t, d = _gelu_reference(v64, v64, v64)
    np.testing.assert_allclose(t32, t, rtol=16 * EPS32)
    np.testing.assert_allclose(d32, d, rtol=16 * EPS32)


@pytest.mark.parametrize("name", list(SINUSOIDS))
def test_sinusoid_diagonal_float32(name):
    """On the diagonal, float32 T and Ṫ of Sin/Cos/Rbf are within 16 eps32 for v in [1e-6, 1e3].

    (Sin's ``T = (1 - e^{-2v})/2`` was the difference of two exponentials, off by ``eps/v``:
    3% at v = 1e-6.)
    """
    act, (a, b, c) = SINUSOIDS[name]
    var = DIAGONAL_VARIANCES[DIAGONAL_VARIANCES <= 1e3]
    v = jnp.asarray(var)
    t32, d32 = act.kernel_fns(v, v, v, True)
    # Closed form of the diagonal, written with expm1 so that float64 is exact to ~1e-16.
    b2v = b * b * var.astype(np.float64)
    t = 0.5 * a * a * (-np.expm1(-2 * b2v) + 2 * np.sin(c) ** 2 * np.exp(-2 * b2v))
    d = 0.5 * a * a * b * b * (-np.expm1(-2 * b2v) + 2 * np.cos(c) ** 2 * np.exp(-2 * b2v))
    np.testing.assert_allclose(t32, t, rtol=16 * EPS32)
    np.testing.assert_allclose(d32, d, rtol=16 * EPS32)


# ----------------------------------------------------------------------------- deep networks


def test_deep_sin_float32_matches_float64():
    """The reported case through ``nnlab.kernel``: 10 × (Dense(W_std=3, b_std=0.1), Sin).

    In the chaotic phase (slope of the correlation map at ρ = 1 is W_std²(1 + e^{-2v})/2 ≈ 4.5)
    the diagonal's rounding mismatch with its variance grew ×4.5 per layer (an NNGP diagonal
    of 4.12 instead of 4.51). Fixed: the diagonal is exact and everything within 1e-4.
    """
    x = mlp_inputs()

    def kernels(x):
        def one(w):
            hidden = [nl.Dense(8, W_std=w, b_std=B_STD), nl.Sin()] * 10
            k = nnlab.kernel(nl.serial(*hidden, nl.Dense(1, W_std=w, b_std=B_STD)), x)
            return k.nngp, k.ntk

        return jax.vmap(one)(jnp.asarray([1.5, 3.0, 5.0], x.dtype))

    k32 = kernels(jnp.asarray(x, jnp.float32))
    with jax.enable_x64(True):
        k64 = kernels(jnp.asarray(x, jnp.float64))
    for a32, a64 in zip(k32, k64):
        assert a32.dtype == jnp.float32 and a64.dtype == jnp.float64
        for b32, b64 in zip(np.asarray(a32, np.float64), np.asarray(a64)):
            np.testing.assert_allclose(np.diag(b32), np.diag(b64), rtol=1e-5)
            d = np.sqrt(np.diag(b64))
            assert np.max(np.abs(b32 - b64) / np.outer(d, d)) <= 1e-4
            e = np.linalg.eigvalsh(b32)
            assert e[0] >= -N_POINTS * 1e-4 * e[-1]


# ----------------------------------------------------------------------------- the grid

# Compile time, not the grid's size, is the cost (vmap over W_std, scan over depth), so the
# default run checks the whole W_std × depth grid for three activations (a kink, the GELU
# closed form and a sinusoid); the other architectures are `slow`.
QUICK = ("Relu", "Gelu", "Sin")


@pytest.mark.parametrize("name", QUICK)
def test_float32_grid_quick(name):
    """W_std × depth × {NNGP, NTK} for ``name``; see check_cell for the bounds."""
    check_grid(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ARCHITECTURES if n not in QUICK])
def test_float32_grid(name):
    """The rest of the grid: Erf, Tanh, Cos, Rbf and the two ReLU CNNs."""
    check_grid(name)
