"""Tests for nnlab.spectral: eigenlearning against scipy root finding and empirical regression."""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from nnlab import spectral

M = 500
LAM = np.arange(1, M + 1.0) ** -1.5  # power-law spectrum λ_i = i^{-1.5}
COEF = np.arange(1, M + 1.0) ** -1.0  # power-law target v_i = i^{-1}


@pytest.mark.parametrize("ridge", [0.0, 0.05])
def test_kappa_matches_brentq(x64, ridge):
    for n in (10, 100):
        ref = scipy.optimize.brentq(
            lambda k, n=n: np.sum(LAM / (LAM + k)) + ridge / k - n,
            1e-14,
            1e3,
            xtol=1e-16,
            rtol=1e-14,
        )
        np.testing.assert_allclose(spectral.solve_kappa(LAM, n, ridge=ridge), ref, rtol=1e-10)


def test_eigenlearning_vmaps_over_n_and_jits(x64):
    ns = jnp.array([20.0, 50.0, 100.0])
    batched = jax.jit(jax.vmap(lambda n: spectral.eigenlearning(LAM, COEF, n).test_mse))(ns)
    for i, n in enumerate((20, 50, 100)):
        np.testing.assert_allclose(
            batched[i], spectral.eigenlearning(LAM, COEF, n).test_mse, rtol=1e-12
        )
    assert np.all(np.diff(np.asarray(batched)) < 0)  # more data, less error


@pytest.mark.slow
@pytest.mark.parametrize(("ridge", "noise"), [(0.0, 0.0), (0.01, 0.05)])
def test_eigenlearning_predicts_empirical_kernel_regression(x64, key, ridge, noise):
    """Test MSE within 5% for n >= 50 (issue 5), on Gaussian features with power-law spectra."""
    ns, seeds = [50, 100], 64
    curve = spectral.learning_curve(key, LAM, COEF, ns, seeds=seeds, ridge=ridge, noise=noise)
    assert curve.test_mse.shape == (2, seeds)
    for i, n in enumerate(ns):
        theory = spectral.eigenlearning(LAM, COEF, n, ridge=ridge, noise=noise)
        mean = float(jnp.mean(curve.test_mse[i]))
        se = float(jnp.std(curve.test_mse[i])) / np.sqrt(seeds)
        assert se < 0.025 * float(theory.test_mse)  # Monte Carlo error small enough to resolve 5%
        assert abs(mean / float(theory.test_mse) - 1) < 0.05, (n, mean, float(theory.test_mse))
        if ridge > 0:  # train MSE = (δ / nκ)² test MSE; same 5% criterion
            train = float(jnp.mean(curve.train_mse[i]))
            assert abs(train / float(theory.train_mse) - 1) < 0.05, (n, train, theory.train_mse)
        else:  # ridgeless regression interpolates: zero train error in theory and practice
            assert float(theory.train_mse) == 0.0
            assert float(jnp.max(curve.train_mse[i])) < 1e-16


def test_operator_eigensystem_recovers_spectrum(x64, key):
    """Nyström estimate from 1000 samples of a 4-mode kernel: top eigenvalues within 4 SE."""
    lam = jnp.array([1.0, 0.5, 0.25, 0.125])
    phi = jax.random.normal(key, (1000, 4))
    v = jnp.array([1.0, -1.0, 0.5, 0.0])
    evals, efuns, coef = spectral.operator_eigensystem((phi * lam[None, :]) @ phi.T, phi @ v)
    # Eigenvalues of (1/n) Φ Λ Φᵀ fluctuate with relative sd ~ sqrt(2/n) ≈ 0.045: 4 SE = 0.18.
    np.testing.assert_allclose(evals[:4], lam, rtol=0.18)
    np.testing.assert_allclose(evals[4:], 0.0, atol=1e-10)
    np.testing.assert_allclose(jnp.abs(coef[:3]), jnp.abs(v[:3]), atol=0.15)  # ~4/sqrt(n)
    np.testing.assert_allclose(jnp.mean(efuns[:, 0] ** 2), 1.0, rtol=1e-10)  # orthonormal


def test_errors():
    with pytest.raises(ValueError, match=r"coefficients must have the shape of eigenvalues"):
        spectral.eigenlearning(LAM, COEF[:5], 10)
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        spectral.solve_kappa(LAM, 10, ridge=-1.0)
    with pytest.raises(ValueError, match="eigenvalues must be a 1-D array"):
        spectral.solve_kappa(np.eye(3), 10)
    with pytest.raises(ValueError, match="ns must be a non-empty list"):
        spectral.learning_curve(jax.random.key(0), LAM, COEF, [])


def test_docstring_examples_run():
    assert doctest.testmod(spectral).failed == 0
