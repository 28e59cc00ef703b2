"""Bad input to the theory modules is a clear error, never silent garbage.

Every public entry point of ``nnlab.predict``, ``nnlab.spectral``, ``nnlab.curvature``,
``nnlab.finitewidth``, ``nnlab.meanfield``, ``nnlab.quadratic``, ``nnlab.deeplinear`` and
``nnlab.evaluate`` (comparison, scaling) must raise a ``TypeError`` (wrong kind) or
``ValueError`` (bad value) that names the argument, for wrong shapes, ranks, dtypes and types,
empty data, NaN/inf, negative or zero sizes and rates and unknown options. NaN never passes
a check. NumPy integers are accepted wherever an int is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnlab import curvature as cv
from nnlab import deeplinear as dl
from nnlab import finitewidth as fw
from nnlab import layers as nl
from nnlab import meanfield as mf
from nnlab import predict, spectral
from nnlab import quadratic as nq
from nnlab.evaluate import Comparison, scaling_fit

NAN = float("nan")
INF = float("inf")
KEY = jax.random.key(0)

# predict: a small positive-definite kernel problem.
K = jnp.array([[2.0, 0.5], [0.5, 1.0]])
K_NAN = K.at[0, 1].set(NAN)
Y = jnp.array([1.0, -1.0])
KX = jnp.ones((3, 2))
KXX = jnp.eye(3)


def _mse(f, y):
    return 0.5 * jnp.sum((f - y) ** 2)


# spectral
LAM = 1.0 / jnp.arange(1.0, 21.0) ** 2
COEF = jnp.sqrt(LAM)

# curvature
DIAG = cv.matrix_operator(jnp.diag(jnp.arange(1.0, 5.0)))
NONSYM = jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
NONSYM_OP = cv.CurvatureOperator(lambda v: NONSYM @ v, 3, jnp.float32, lambda v: v)
P_LIN = {"w": jnp.zeros((2, 1)), "b": jnp.zeros((1,))}
X_LIN = jnp.eye(2)
Y_LIN = jnp.ones((2, 1))


def _lin(p, x):
    return x @ p["w"] + p["b"]


# finitewidth
X_FW = jnp.ones(3)
NET_FW = nl.serial(nl.Dense(8, 1.0, 0.0, "standard"), nl.Tanh(), nl.Dense(8, 1.0, 0.0, "standard"))

# meanfield
EYE2 = jnp.eye(2)
W_MF = jnp.ones((2, 4))
X_MF, Y_MF = jnp.ones((4, 2)), jnp.ones((4, 1))
A_MF, WS_MF = jnp.ones(4), jnp.ones((4, 2))  # particles (a_i, w_i)

# deeplinear
DATA = dl.hierarchical_data(2)
LOSS = np.linspace(1.0, 0.1, 5)


def _nq_f(p, x):
    return x @ p


# One case per (function, argument, defect): (call, exception type, regex naming the argument).
# The regexes use word boundaries so that e.g. "x" does not match "max".
CASES = [
    # ---------------------------------------------------------------- nnlab.predict
    (
        "max_lr-momentum-negative",
        lambda: predict.max_learning_rate(K, momentum=-2.0),
        ValueError,
        r"\bmomentum\b",
    ),
    (
        "max_lr-momentum-nan",
        lambda: predict.max_learning_rate(K, momentum=NAN),
        ValueError,
        r"\bmomentum\b",
    ),
    (
        "max_lr-momentum-one",
        lambda: predict.max_learning_rate(K, momentum=1.0),
        ValueError,
        r"\bmomentum\b",
    ),
    (
        "max_lr-loss_normalization",
        lambda: predict.max_learning_rate(K, loss_normalization="avg"),
        ValueError,
        r"\bloss_normalization\b",
    ),
    ("max_lr-ntk-nan", lambda: predict.max_learning_rate(K_NAN), ValueError, r"\bntk_train\b"),
    (
        "max_lr-ntk-zero",
        lambda: predict.max_learning_rate(jnp.zeros((2, 2))),
        ValueError,
        r"\bntk_train\b",
    ),
    (
        "kernel_regression-k_train-nan",
        lambda: predict.kernel_regression(K_NAN, Y, KX),
        ValueError,
        r"\bk_train\b",
    ),
    (
        "kernel_regression-y-inf",
        lambda: predict.kernel_regression(K, Y.at[0].set(INF), KX),
        ValueError,
        r"\by\b",
    ),
    (
        "kernel_regression-k_test_train-nan",
        lambda: predict.kernel_regression(K, Y, KX.at[0, 0].set(NAN)),
        ValueError,
        r"\bk_test_train\b",
    ),
    (
        "kernel_regression-ridge-nan",
        lambda: predict.kernel_regression(K, Y, KX, ridge=NAN),
        ValueError,
        r"\bridge\b",
    ),
    (
        "kernel_regression-ridge-str",
        lambda: predict.kernel_regression(K, Y, KX, ridge="0.1"),
        TypeError,
        r"\bridge\b",
    ),
    (
        "kernel_regression-n0",
        lambda: predict.kernel_regression(jnp.zeros((0, 0)), jnp.zeros(0), jnp.zeros((1, 0))),
        ValueError,
        r"\bk_train\b",
    ),
    (
        "kernel_regression-k_train-str",
        lambda: predict.kernel_regression("abc", Y, KX),
        TypeError,
        r"\bk_train\b",
    ),
    (
        "kernel_regression-k_train-complex",
        lambda: predict.kernel_regression(K.astype(jnp.complex64), Y, KX),
        TypeError,
        r"\bk_train\b",
    ),
    (
        "gp_posterior-k_test_test-nan",
        lambda: predict.gp_posterior(K, Y, KX, KXX.at[0, 0].set(NAN)),
        ValueError,
        r"\bk_test_test\b",
    ),
    (
        "gp_posterior-noise-negative",
        lambda: predict.gp_posterior(K, Y, KX, KXX, noise=-1.0),
        ValueError,
        r"\bnoise\b",
    ),
    (
        "gradient_flow_mse-t-nan",
        lambda: predict.gradient_flow_mse(K, Y, jnp.array([0.0, NAN])),
        ValueError,
        r"\bt\b",
    ),
    (
        "gradient_flow_mse-lr-nan",
        lambda: predict.gradient_flow_mse(K, Y, 1.0, lr=NAN),
        ValueError,
        r"\blr\b",
    ),
    (
        "gradient_flow_mse-lr-negative",
        lambda: predict.gradient_flow_mse(K, Y, 1.0, lr=-1.0),
        ValueError,
        r"\blr\b",
    ),
    (
        "gradient_flow_mse-f0_train-nan",
        lambda: predict.gradient_flow_mse(K, Y, 1.0, f0_train=jnp.array([NAN, 0.0])),
        ValueError,
        r"\bf0_train\b",
    ),
    (
        "gradient_flow_mse-ridge-inf",
        lambda: predict.gradient_flow_mse(K, Y, 1.0, ridge=INF),
        ValueError,
        r"\bridge\b",
    ),
    (
        "gradient_descent_mse-momentum-nan",
        lambda: predict.gradient_descent_mse(K, Y, jnp.array([1, 2]), momentum=NAN),
        ValueError,
        r"\bmomentum\b",
    ),
    (
        "gradient_descent_mse-steps-negative",
        lambda: predict.gradient_descent_mse(K, Y, jnp.array([-1])),
        ValueError,
        r"\bsteps\b",
    ),
    (
        "gradient_descent_mse-steps-float",
        lambda: predict.gradient_descent_mse(K, Y, 1.5),
        TypeError,
        r"\bsteps\b",
    ),
    (
        "gradient_descent_mse-lr-nan",
        lambda: predict.gradient_descent_mse(K, Y, 3, lr=NAN),
        ValueError,
        r"\blr\b",
    ),
    (
        "gradient_flow-loss-str",
        lambda: predict.gradient_flow("mse", K, Y, 1.0),
        TypeError,
        r"\bloss\b",
    ),
    (
        "gradient_flow-t-nan",
        lambda: predict.gradient_flow(_mse, K, Y, jnp.array([0.0, NAN])),
        ValueError,
        r"\bt\b",
    ),
    (
        "gradient_flow-y-nan",
        lambda: predict.gradient_flow(_mse, K, Y.at[1].set(NAN), 1.0),
        ValueError,
        r"\by\b",
    ),
    (
        "gradient_flow-lr-nan",
        lambda: predict.gradient_flow(_mse, K, Y, 1.0, lr=NAN),
        ValueError,
        r"\blr\b",
    ),
    (
        "gradient_flow-substeps-zero",
        lambda: predict.gradient_flow(_mse, K, Y, 1.0, substeps=0),
        ValueError,
        r"\bsubsteps\b",
    ),
    (
        "ensemble_mse-nngp-nan",
        lambda: predict.ensemble_mse({"nngp": K_NAN, "ntk": K}, Y, 1.0),
        ValueError,
        r"\bnngp\b",
    ),
    (
        "ensemble_mse-t-nan",
        lambda: predict.ensemble_mse({"nngp": K, "ntk": K}, Y, NAN),
        ValueError,
        r"\bt\b",
    ),
    (
        "ensemble_mse-lr-nan",
        lambda: predict.ensemble_mse({"nngp": K, "ntk": K}, Y, 1.0, lr=NAN),
        ValueError,
        r"\blr\b",
    ),
    (
        "ensemble_mse-nngp_test_test-nan",
        lambda: predict.ensemble_mse(
            {"nngp": K, "ntk": K}, Y, 1.0, {"nngp": KX, "ntk": KX}, KXX * NAN
        ),
        ValueError,
        r"\bnngp_test_test\b",
    ),
    (
        "log_marginal_likelihood-noise-nan",
        lambda: predict.log_marginal_likelihood(K, Y, noise=NAN),
        ValueError,
        r"\bnoise\b",
    ),
    (
        "log_marginal_likelihood-y-nan",
        lambda: predict.log_marginal_likelihood(K, Y.at[0].set(NAN)),
        ValueError,
        r"\by\b",
    ),
    (
        "fit_hyperparameters-steps-zero",
        lambda: predict.fit_hyperparameters(lambda p: K * p, 1.0, Y, steps=0),
        ValueError,
        r"\bsteps\b",
    ),
    (
        "fit_hyperparameters-kernel_fn-str",
        lambda: predict.fit_hyperparameters("cov", 1.0, Y),
        TypeError,
        r"\bkernel_fn\b",
    ),
    (
        "fit_hyperparameters-y-nan",
        lambda: predict.fit_hyperparameters(lambda p: K * p, 1.0, Y.at[0].set(NAN), steps=2),
        ValueError,
        r"\by\b",
    ),
    # ---------------------------------------------------------------- nnlab.spectral
    (
        "solve_kappa-eigenvalues-nan",
        lambda: spectral.solve_kappa(LAM.at[3].set(NAN), 5),
        ValueError,
        r"\beigenvalues\b",
    ),
    (
        "solve_kappa-eigenvalues-inf",
        lambda: spectral.solve_kappa(LAM.at[3].set(INF), 5),
        ValueError,
        r"\beigenvalues\b",
    ),
    (
        "solve_kappa-eigenvalues-negative",
        lambda: spectral.solve_kappa(LAM.at[3].set(-1.0), 5),
        ValueError,
        r"\beigenvalues\b",
    ),
    (
        "solve_kappa-eigenvalues-empty",
        lambda: spectral.solve_kappa(jnp.zeros(0), 5),
        ValueError,
        r"\beigenvalues\b",
    ),
    (
        "solve_kappa-ridge-nan",
        lambda: spectral.solve_kappa(LAM, 5, ridge=NAN),
        ValueError,
        r"\bridge\b",
    ),
    ("solve_kappa-n-zero", lambda: spectral.solve_kappa(LAM, 0), ValueError, r"\bn\b"),
    ("solve_kappa-n-nan", lambda: spectral.solve_kappa(LAM, NAN), ValueError, r"\bn\b"),
    (
        "solve_kappa-iterations-zero",
        lambda: spectral.solve_kappa(LAM, 5, iterations=0),
        ValueError,
        r"\biterations\b",
    ),
    (
        "eigenlearning-noise-nan",
        lambda: spectral.eigenlearning(LAM, COEF, 5, noise=NAN),
        ValueError,
        r"\bnoise\b",
    ),
    (
        "eigenlearning-coefficients-inf",
        lambda: spectral.eigenlearning(LAM, COEF.at[0].set(INF), 5),
        ValueError,
        r"\bcoefficients\b",
    ),
    (
        "learning_curve-ns-fraction",
        lambda: spectral.learning_curve(KEY, LAM, COEF, [2.5], seeds=2),
        TypeError,
        r"\bns\b",
    ),
    (
        "learning_curve-ns-int",
        lambda: spectral.learning_curve(KEY, LAM, COEF, 10, seeds=2),
        TypeError,
        r"\bns\b",
    ),
    (
        "learning_curve-key-int",
        lambda: spectral.learning_curve(0, LAM, COEF, [10], seeds=2),
        TypeError,
        r"\bkey\b",
    ),
    (
        "learning_curve-seeds-zero",
        lambda: spectral.learning_curve(KEY, LAM, COEF, [10], seeds=0),
        ValueError,
        r"\bseeds\b",
    ),
    (
        "learning_curve-noise-negative",
        lambda: spectral.learning_curve(KEY, LAM, COEF, [10], seeds=2, noise=-1.0),
        ValueError,
        r"\bnoise\b",
    ),
    (
        "operator_eigensystem-k_sample-shape",
        lambda: spectral.operator_eigensystem(jnp.ones((2, 3))),
        ValueError,
        r"\bk_sample\b",
    ),
    (
        "operator_eigensystem-k_sample-nan",
        lambda: spectral.operator_eigensystem(K_NAN),
        ValueError,
        r"\bk_sample\b",
    ),
    ("eigh_descending-k-nan", lambda: spectral.eigh_descending(K_NAN), ValueError, r"\bk\b"),
    # ---------------------------------------------------------------- nnlab.curvature
    (
        "lanczos-nonsymmetric-operator",
        lambda: cv.lanczos(NONSYM_OP, KEY, 2),
        ValueError,
        r"\bop\b.*symmetric",
    ),
    (
        "matrix_operator-nonsymmetric",
        lambda: cv.matrix_operator(NONSYM),
        ValueError,
        r"\bmatrix\b.*symmetric",
    ),
    (
        "matrix_operator-nan",
        lambda: cv.matrix_operator(jnp.eye(2).at[0, 0].set(NAN)),
        ValueError,
        r"\bmatrix\b",
    ),
    (
        "matrix_operator-list",
        lambda: cv.matrix_operator([[1.0, 0.0], [0.0, 1.0]]),
        TypeError,
        r"\bmatrix\b",
    ),
    (
        "hessian_operator-wrt-str",
        lambda: cv.hessian_operator(_lin, P_LIN, X_LIN, Y_LIN, wrt="w"),
        TypeError,
        r"\bwrt\b",
    ),
    (
        "hessian_operator-wrt-str-leaf",
        lambda: cv.hessian_operator(_lin, P_LIN, X_LIN, Y_LIN, wrt={"w": "yes", "b": False}),
        TypeError,
        r"\bwrt\b",
    ),
    (
        "gauss_newton_operator-wrt-int",
        lambda: cv.gauss_newton_operator(_lin, P_LIN, X_LIN, Y_LIN, wrt=1),
        TypeError,
        r"\bwrt\b",
    ),
    (
        "hessian_operator-x-nan",
        lambda: cv.hessian_operator(_lin, P_LIN, X_LIN.at[0, 0].set(NAN), Y_LIN),
        ValueError,
        r"\bx\b",
    ),
    (
        "hessian_operator-y-inf",
        lambda: cv.hessian_operator(_lin, P_LIN, X_LIN, Y_LIN.at[0, 0].set(INF)),
        ValueError,
        r"\by\b",
    ),
    (
        "hessian_operator-n0",
        lambda: cv.hessian_operator(_lin, P_LIN, jnp.zeros((0, 2)), jnp.zeros((0, 1))),
        ValueError,
        r"\bx\b",
    ),
    (
        "hessian_operator-batch_size-float",
        lambda: cv.hessian_operator(_lin, P_LIN, X_LIN, Y_LIN, batch_size=1.5),
        TypeError,
        r"\bbatch_size\b",
    ),
    (
        "hessian_operator-apply_fn-str",
        lambda: cv.hessian_operator("f", P_LIN, X_LIN, Y_LIN),
        TypeError,
        r"\bapply_fn\b",
    ),
    (
        "hessian_operator-loss_normalization",
        lambda: cv.hessian_operator(_lin, P_LIN, X_LIN, Y_LIN, loss_normalization="avg"),
        ValueError,
        r"\bloss_normalization\b",
    ),
    ("lanczos-num_iters-float", lambda: cv.lanczos(DIAG, KEY, 2.0), TypeError, r"\bnum_iters\b"),
    ("lanczos-key-int", lambda: cv.lanczos(DIAG, 0, 2), TypeError, r"\bkey\b"),
    ("lanczos-v0-zero", lambda: cv.lanczos(DIAG, KEY, 2, v0=jnp.zeros(4)), ValueError, r"\bv0\b"),
    (
        "lanczos-v0-nan",
        lambda: cv.lanczos(DIAG, KEY, 2, v0=jnp.ones(4).at[0].set(NAN)),
        ValueError,
        r"\bv0\b",
    ),
    (
        "lanczos-v0-list",
        lambda: cv.lanczos(DIAG, KEY, 2, v0=[1.0, 0.0, 0.0, 0.0]),
        TypeError,
        r"\bv0\b",
    ),
    (
        "top_eigenpairs-which",
        lambda: cv.top_eigenpairs(DIAG, KEY, 1, which="top"),
        ValueError,
        r"\bwhich\b",
    ),
    ("top_eigenpairs-k-float", lambda: cv.top_eigenpairs(DIAG, KEY, 1.0), TypeError, r"\bk\b"),
    (
        "hutchinson_trace-num_probes",
        lambda: cv.hutchinson_trace(DIAG, KEY, 1),
        ValueError,
        r"\bnum_probes\b",
    ),
    (
        "lanczos_quadrature-num_iters-zero",
        lambda: cv.lanczos_quadrature(DIAG, KEY, num_iters=0),
        ValueError,
        r"\bnum_iters\b",
    ),
    (
        "spectral_density-sigma-str",
        lambda: cv.spectral_density(DIAG, KEY, jnp.linspace(0, 1, 5), sigma="a"),
        TypeError,
        r"\bsigma\b",
    ),
    (
        "spectral_density-sigma-nan",
        lambda: cv.spectral_density(DIAG, KEY, jnp.linspace(0, 1, 5), sigma=NAN),
        ValueError,
        r"\bsigma\b",
    ),
    (
        "spectral_density-grid-nan",
        lambda: cv.spectral_density(DIAG, KEY, jnp.array([0.0, NAN]), sigma=0.1),
        ValueError,
        r"\bgrid\b",
    ),
    (
        "gaussian_broadening-sigma-negative",
        lambda: cv.gaussian_broadening(
            cv.Quadrature(jnp.zeros((1, 2)), jnp.full((1, 2), 0.5)), jnp.linspace(0, 1, 3), -1.0
        ),
        ValueError,
        r"\bsigma\b",
    ),
    ("sharpness-seed-float", lambda: cv.sharpness(seed=0.5), TypeError, r"\bseed\b"),
    # ---------------------------------------------------------------- nnlab.finitewidth
    (
        "kernel_recursion-c_w-negative",
        lambda: fw.kernel_recursion(jnp.tanh, 1.0, 3, -1.0, 0.0),
        ValueError,
        r"\bc_w\b",
    ),
    (
        "finite_width_recursion-W_std-negative",
        lambda: fw.finite_width_recursion(jnp.tanh, 1.0, 3, -1.0, 0.0),
        ValueError,
        r"\bW_std\b",
    ),
    (
        "kernel_recursion-c_b-negative",
        lambda: fw.kernel_recursion(jnp.tanh, 1.0, 3, 1.0, -0.5),
        ValueError,
        r"\bc_b\b",
    ),
    (
        "finite_width_recursion-b_std-nan",
        lambda: fw.finite_width_recursion(jnp.tanh, 1.0, 3, 1.0, NAN),
        ValueError,
        r"\bb_std\b",
    ),
    (
        "finite_width_recursion-k1-negative",
        lambda: fw.finite_width_recursion(jnp.tanh, -1.0, 3, 1.0, 0.0),
        ValueError,
        r"\bk1\b",
    ),
    (
        "kernel_recursion-depth-zero",
        lambda: fw.kernel_recursion(jnp.tanh, 1.0, 0, 1.0, 0.0),
        ValueError,
        r"\bdepth\b",
    ),
    (
        "kernel_recursion-degree-one",
        lambda: fw.kernel_recursion(jnp.tanh, 1.0, 3, 1.0, 0.0, degree=1),
        ValueError,
        r"\bdegree\b",
    ),
    (
        "kernel_map-c_w-negative",
        lambda: fw.kernel_map(jnp.tanh, 1.0, -2.0, 0.0),
        ValueError,
        r"\bc_w\b",
    ),
    (
        "susceptibilities-c_w-nan",
        lambda: fw.susceptibilities(jnp.tanh, 1.0, NAN),
        ValueError,
        r"\bc_w\b",
    ),
    (
        "gaussian_expectation-variance-negative",
        lambda: fw.gaussian_expectation(jnp.cos, -1.0),
        ValueError,
        r"\bvariance\b",
    ),
    (
        "gaussian_expectation-variance-nan",
        lambda: fw.gaussian_expectation(jnp.cos, NAN),
        ValueError,
        r"\bvariance\b",
    ),
    (
        "gaussian_expectation-f-str",
        lambda: fw.gaussian_expectation("cos", 1.0),
        TypeError,
        r"\bf\b",
    ),
    (
        "scale_invariant_kurtosis-width-zero",
        lambda: fw.scale_invariant_kurtosis(3, 0),
        ValueError,
        r"\bwidth\b",
    ),
    (
        "scale_invariant_kurtosis-width-nan",
        lambda: fw.scale_invariant_kurtosis(3, NAN),
        ValueError,
        r"\bwidth\b",
    ),
    (
        "scale_invariant_kurtosis-slopes-zero",
        lambda: fw.scale_invariant_kurtosis(3, 10.0, 0.0, 0.0),
        ValueError,
        r"\ba_plus\b",
    ),
    (
        "sample_preactivations-network-function",
        lambda: fw.sample_preactivations(KEY, jnp.tanh, X_FW, n_networks=4),
        TypeError,
        r"\bnetwork\b",
    ),
    (
        "sample_preactivations-network-mup",
        lambda: fw.sample_preactivations(
            KEY, nl.serial(nl.Dense(8, 1.0, 0.0, "mup"), nl.Tanh(), nl.Dense(8)), X_FW, n_networks=4
        ),
        ValueError,
        r"\bnetwork\b",
    ),
    (
        "sample_preactivations-n_networks-zero",
        lambda: fw.sample_preactivations(KEY, NET_FW, X_FW, n_networks=0),
        ValueError,
        r"\bn_networks\b",
    ),
    (
        "sample_preactivations-key-int",
        lambda: fw.sample_preactivations(0, NET_FW, X_FW, n_networks=4),
        TypeError,
        r"\bkey\b",
    ),
    (
        "sample_preactivations-x-nan",
        lambda: fw.sample_preactivations(KEY, NET_FW, X_FW.at[0].set(NAN), n_networks=4),
        ValueError,
        r"\bx\b",
    ),
    (
        "sample_preactivations-method",
        lambda: fw.sample_preactivations(KEY, NET_FW, X_FW, n_networks=4, method="fast"),
        ValueError,
        r"\bmethod\b",
    ),
    ("output_density-k-zero", lambda: fw.output_density(0.0, 0.0, 0.0), ValueError, r"\bk\b"),
    (
        "fourth_cumulant_estimate-m4-shape",
        lambda: fw.fourth_cumulant_estimate(jnp.ones((10, 2)), jnp.ones((12, 2)), n_batches=2),
        ValueError,
        r"\bm4\b",
    ),
    (
        "second_moment_estimate-m2-nan",
        lambda: fw.second_moment_estimate(jnp.ones((8, 2)).at[0, 0].set(NAN), n_batches=2),
        ValueError,
        r"\bm2\b",
    ),
    (
        "criticality-k_max-negative",
        lambda: fw.criticality(jnp.tanh, k_max=-1.0),
        ValueError,
        r"\bk_max\b",
    ),
    # ---------------------------------------------------------------- nnlab.meanfield
    (
        "saad_solla_ode-q0-not-psd",
        lambda: mf.saad_solla_ode(
            jnp.array([[1.0, 2.0], [2.0, 1.0]]), 0.1 * EYE2, EYE2, lr=0.5, alpha_max=1.0
        ),
        ValueError,
        r"\bq0\b",
    ),
    (
        "saad_solla_ode-r0-not-psd",
        lambda: mf.saad_solla_ode(EYE2, 2.0 * EYE2, EYE2, lr=0.5, alpha_max=1.0),
        ValueError,
        r"\br0\b",
    ),
    (
        "saad_solla_ode-q0-nan",
        lambda: mf.saad_solla_ode(EYE2.at[0, 0].set(NAN), 0.1 * EYE2, EYE2, lr=0.5, alpha_max=1.0),
        ValueError,
        r"\bq0\b",
    ),
    (
        "saad_solla_ode-lr-nan",
        lambda: mf.saad_solla_ode(EYE2, 0.1 * EYE2, EYE2, lr=NAN, alpha_max=1.0),
        ValueError,
        r"\blr\b",
    ),
    (
        "saad_solla_ode-rtol-inf",
        lambda: mf.saad_solla_ode(EYE2, 0.1 * EYE2, EYE2, lr=0.5, alpha_max=1.0, rtol=INF),
        ValueError,
        r"\brtol\b",
    ),
    (
        "saad_solla_rhs-q-nonsymmetric",
        lambda: mf.saad_solla_rhs(jnp.array([[1.0, 0.5], [0.0, 1.0]]), 0.1 * EYE2, EYE2, lr=0.5),
        ValueError,
        r"\bq\b",
    ),
    (
        "committee_generalisation_error-t-not-psd",
        lambda: mf.committee_generalisation_error(EYE2, 0.1 * EYE2, -EYE2),
        ValueError,
        r"\bt\b",
    ),
    (
        "erf_i3-cov-not-psd",
        lambda: mf.erf_i3(jnp.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])),
        ValueError,
        r"\bcov\b",
    ),
    ("erf_i2-cov-nan", lambda: mf.erf_i2(EYE2.at[0, 1].set(NAN)), ValueError, r"\bcov\b"),
    (
        "committee_order_parameters-w-d0",
        lambda: mf.committee_order_parameters(jnp.ones((2, 0)), jnp.ones((1, 0))),
        ValueError,
        r"\bw\b",
    ),
    (
        "committee_order_parameters-v-nan",
        lambda: mf.committee_order_parameters(W_MF, W_MF.at[0, 0].set(NAN)),
        ValueError,
        r"\bv\b",
    ),
    (
        "committee_online_sgd-key-int",
        lambda: mf.committee_online_sgd(0, W_MF, W_MF, lr=0.5, n_steps=4, n_records=3),
        TypeError,
        r"\bkey\b",
    ),
    (
        "committee_online_sgd-w0-nan",
        lambda: mf.committee_online_sgd(
            KEY, W_MF.at[0, 0].set(NAN), W_MF, lr=0.5, n_steps=4, n_records=3
        ),
        ValueError,
        r"\bw0\b",
    ),
    (
        "meanfield_network-W_std-nan",
        lambda: mf.meanfield_network(4, W_std=NAN),
        ValueError,
        r"\bW_std\b",
    ),
    (
        "meanfield_network-n_particles-zero",
        lambda: mf.meanfield_network(0),
        ValueError,
        r"\bn_particles\b",
    ),
    (
        "particle_gradient_flow-lr-inf",
        lambda: mf.particle_gradient_flow(
            KEY, X_MF, Y_MF, n_particles=4, lr=INF, n_steps=2, n_records=2
        ),
        ValueError,
        r"\blr\b",
    ),
    (
        "particle_gradient_flow-key-int",
        lambda: mf.particle_gradient_flow(0, X_MF, Y_MF, n_particles=4, lr=0.1, n_steps=2),
        TypeError,
        r"\bkey\b",
    ),
    (
        "particle_gradient_flow-x-nan",
        lambda: mf.particle_gradient_flow(
            KEY, X_MF.at[0, 0].set(NAN), Y_MF, n_particles=4, lr=0.1, n_steps=2
        ),
        ValueError,
        r"\bx\b",
    ),
    (
        "particle_gradient_flow-y-nan",
        lambda: mf.particle_gradient_flow(
            KEY, X_MF, Y_MF.at[0].set(NAN), n_particles=4, lr=0.1, n_steps=2
        ),
        ValueError,
        r"\by\b",
    ),
    (
        "particles-params-array",
        lambda: mf.particles(jnp.ones(3)),
        TypeError,
        r"\bparams\b",
    ),
    (
        "particle_density-a-nan",
        lambda: mf.particle_density(A_MF * NAN, WS_MF),
        ValueError,
        r"\ba\b",
    ),
    (
        "particle_density-bins-zero",
        lambda: mf.particle_density(A_MF, WS_MF, bins=0),
        ValueError,
        r"\bbins\b",
    ),
    # ---------------------------------------------------------------- nnlab.quadratic
    ("UVModel-x-nan", lambda: nq.UVModel(4, x=NAN), ValueError, r"\bx\b"),
    ("UVModel-y-inf", lambda: nq.UVModel(4, y=INF), ValueError, r"\by\b"),
    ("UVModel-n-zero", lambda: nq.UVModel(0), ValueError, r"\bn\b"),
    ("catapult_thresholds-lam0-nan", lambda: nq.catapult_thresholds(NAN), ValueError, r"\blam0\b"),
    (
        "classify_phase-converged-nan",
        lambda: nq.classify_phase(LOSS, np.ones(5), 1.0, converged=NAN),
        ValueError,
        r"\bconverged\b",
    ),
    (
        "classify_phase-spike-str",
        lambda: nq.classify_phase(LOSS, np.ones(5), 1.0, spike="a"),
        TypeError,
        r"\bspike\b",
    ),
    (
        "classify_phase-loss-str",
        lambda: nq.classify_phase("loss", np.ones(5), 1.0),
        TypeError,
        r"\bloss\b",
    ),
    (
        "phase_codes-spike-nan",
        lambda: nq.phase_codes(LOSS, np.ones(5), 1.0, spike=NAN),
        ValueError,
        r"\bspike\b",
    ),
    (
        "ntk_scaled_sgd-ratio-negative-array",
        lambda: nq.ntk_scaled_sgd(jnp.asarray(-1.0), _nq_f, jnp.eye(2)),
        ValueError,
        r"\bratio\b",
    ),
    (
        "ntk_scaled_sgd-ratio-negative-int64",
        lambda: nq.ntk_scaled_sgd(np.int64(-1), _nq_f, jnp.eye(2)),
        ValueError,
        r"\bratio\b",
    ),
    (
        "ntk_max_eigenvalue-x-nan",
        lambda: nq.ntk_max_eigenvalue(_nq_f, jnp.zeros(2), jnp.eye(2).at[0, 0].set(NAN)),
        ValueError,
        r"\bx\b",
    ),
    (
        "ntk_max_eigenvalue-apply_fn-str",
        lambda: nq.ntk_max_eigenvalue("f", jnp.zeros(2), jnp.eye(2)),
        TypeError,
        r"\bapply_fn\b",
    ),
    (
        "uv_phase_diagram-key-int",
        lambda: nq.uv_phase_diagram(nq.UVModel(8), [1.0], key=0, seeds=1, steps=2),
        TypeError,
        r"\bkey\b",
    ),
    (
        "uv_phase_diagram-ratios-nan",
        lambda: nq.uv_phase_diagram(nq.UVModel(8), [NAN], key=KEY, seeds=1, steps=2),
        ValueError,
        r"\bratios\b",
    ),
    (
        "uv_simulate-lr-nan",
        lambda: nq.UVModel(8).simulate(nq.UVModel(8).init(KEY), NAN, 2),
        ValueError,
        r"\blr\b",
    ),
    (
        "taylor_ensemble_model-init_fn-str",
        lambda: nq.taylor_ensemble_model(_nq_f, "init", 1),
        TypeError,
        r"\binit_fn\b",
    ),
    # ---------------------------------------------------------------- nnlab.deeplinear
    (
        "mode_velocity-u-negative",
        lambda: dl.mode_velocity(-1.0, 1.0, depth=3),
        ValueError,
        r"\bu\b",
    ),
    ("mode_velocity-tau-zero", lambda: dl.mode_velocity(0.5, 1.0, tau=0.0), ValueError, r"\btau\b"),
    ("mode_velocity-s-nan", lambda: dl.mode_velocity(0.5, NAN), ValueError, r"\bs\b"),
    ("mode_dynamics-t-nan", lambda: dl.mode_dynamics(1.0, 0.1, NAN), ValueError, r"\bt\b"),
    (
        "mode_dynamics-tau-inf",
        lambda: dl.mode_dynamics(1.0, 0.1, 1.0, tau=INF),
        ValueError,
        r"\btau\b",
    ),
    ("learning_time-u_f-nan", lambda: dl.learning_time(1.0, 0.1, NAN), ValueError, r"\bu_f\b"),
    (
        "mode_decomposition-x-nan",
        lambda: dl.mode_decomposition(DATA.x.at[0, 0].set(NAN), DATA.y),
        ValueError,
        r"\bx\b",
    ),
    (
        "mode_decomposition-rcond-negative",
        lambda: dl.mode_decomposition(DATA.x, DATA.y, rcond=-1.0),
        ValueError,
        r"\brcond\b",
    ),
    (
        "correlations-y-inf",
        lambda: dl.correlations(DATA.x, DATA.y.at[0, 0].set(INF)),
        ValueError,
        r"\by\b",
    ),
    (
        "random_teacher-singular_values-nan",
        lambda: dl.random_teacher(KEY, 4, 2, [NAN]),
        ValueError,
        r"\bsingular_values\b",
    ),
    (
        "random_teacher-singular_values-negative",
        lambda: dl.random_teacher(KEY, 4, 2, [-1.0]),
        ValueError,
        r"\bsingular_values\b",
    ),
    ("random_teacher-key-int", lambda: dl.random_teacher(0, 4, 2, [1.0]), TypeError, r"\bkey\b"),
    (
        "simulate-hidden_widths-int",
        lambda: dl.simulate(KEY, DATA.x, DATA.y, 8, lr=0.1, n_steps=2),
        TypeError,
        r"\bhidden_widths\b",
    ),
    (
        "simulate-lr-inf",
        lambda: dl.simulate(KEY, DATA.x, DATA.y, (8,), lr=INF, n_steps=2),
        ValueError,
        r"\blr\b",
    ),
    (
        "simulate-W_std-inf",
        lambda: dl.simulate(KEY, DATA.x, DATA.y, (8,), lr=0.1, n_steps=2, W_std=INF),
        ValueError,
        r"\bW_std\b",
    ),
    (
        "simulate-modes-type",
        lambda: dl.simulate(KEY, DATA.x, DATA.y, (8,), lr=0.1, n_steps=2, modes=(1, 2)),
        TypeError,
        r"\bmodes\b",
    ),
    (
        "init_params-W_std-nan",
        lambda: dl.init_params(KEY, (3, 4, 2), init="random", W_std=NAN),
        ValueError,
        r"\bW_std\b",
    ),
    (
        "init_params-key-int",
        lambda: dl.init_params(0, (3, 4, 2), init="random"),
        TypeError,
        r"\bkey\b",
    ),
    (
        "project_modes-u-nan",
        lambda: dl.project_modes([jnp.eye(2)], jnp.eye(2).at[0, 0].set(NAN), jnp.eye(2)),
        ValueError,
        r"\bu\b",
    ),
    (
        "hierarchical_data-n_levels-zero",
        lambda: dl.hierarchical_data(0),
        ValueError,
        r"\bn_levels\b",
    ),
    # ---------------------------------------------------------------- nnlab.evaluate
    (
        "Comparison-empty",
        lambda: Comparison("e", np.zeros(0), np.zeros(0), ("t",), tolerance=0.1),
        ValueError,
        r"\btheory\b",
    ),
    (
        "Comparison-empty-2d",
        lambda: Comparison("e", np.zeros((0, 3)), np.zeros((0, 3)), ("a", "b"), tolerance=0.1),
        ValueError,
        r"\btheory\b",
    ),
    (
        "Comparison-empty-seeds",
        lambda: Comparison("e", np.zeros(3), np.zeros((0, 3)), ("t",), tolerance=0.1),
        ValueError,
        r"\bsimulation\b",
    ),
    (
        "Comparison-tolerance-nan",
        lambda: Comparison("e", np.ones(3), np.ones(3), ("t",), tolerance=NAN),
        ValueError,
        r"\btolerance\b",
    ),
    (
        "Comparison-theory-nan",
        lambda: Comparison("e", np.array([1.0, NAN]), np.ones(2), ("t",), tolerance=0.1),
        ValueError,
        r"\btheory\b",
    ),
    (
        "Comparison-passes-tolerance-nan",
        lambda: Comparison("e", np.ones(3), np.ones(3), ("t",), tolerance=0.1).passes(NAN),
        ValueError,
        r"\btolerance\b",
    ),
    (
        "Comparison-scalar-theory-nan",
        lambda: Comparison.scalar("s", NAN, 1.0, tolerance=0.1),
        ValueError,
        r"\btheory\b",
    ),
    (
        "scaling_fit-confidence-str",
        lambda: scaling_fit([1, 2, 4], [1.0, 0.5, 0.25], confidence="high"),
        TypeError,
        r"\bconfidence\b",
    ),
    (
        "scaling_fit-errors-nan",
        lambda: scaling_fit([1, 2, 4], [1.0, NAN, 0.25]),
        ValueError,
        r"\berrors\b",
    ),
    ("scaling_fit-xs-empty", lambda: scaling_fit([], []), ValueError, r"\bxs\b|\bpoints\b"),
]


@pytest.mark.parametrize(
    ("call", "error", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


# NumPy integers are ints everywhere (sizes, counts, steps, depths).
I = np.int64
ACCEPTS_NUMPY_INTS = [
    ("gradient_flow-substeps", lambda: predict.gradient_flow(_mse, K, Y, 1.0, substeps=I(2))),
    (
        "fit_hyperparameters-steps",
        lambda: predict.fit_hyperparameters(lambda p: K * p, 1.0, Y, steps=I(2)),
    ),
    ("gradient_descent_mse-steps", lambda: predict.gradient_descent_mse(K, Y, I(3))),
    ("solve_kappa-n", lambda: spectral.solve_kappa(LAM, I(5), iterations=I(50))),
    (
        "learning_curve-ns-seeds",
        lambda: spectral.learning_curve(KEY, LAM, COEF, [I(5)], seeds=I(2)),
    ),
    ("lanczos-num_iters", lambda: cv.lanczos(DIAG, KEY, I(3))),
    ("top_eigenpairs-k", lambda: cv.top_eigenpairs(DIAG, KEY, I(1), num_iters=I(3))),
    ("hutchinson_trace-num_probes", lambda: cv.hutchinson_trace(DIAG, KEY, I(4))),
    (
        "lanczos_quadrature",
        lambda: cv.lanczos_quadrature(DIAG, KEY, num_iters=I(3), num_probes=I(2)),
    ),
    (
        "hessian_operator-batch_size",
        lambda: cv.hessian_operator(_lin, P_LIN, X_LIN, Y_LIN, batch_size=I(1)),
    ),
    ("sharpness-num_iters", lambda: cv.sharpness(num_iters=I(3), seed=I(1))),
    (
        "kernel_recursion-depth",
        lambda: fw.kernel_recursion(jnp.tanh, 1.0, I(3), 1.0, 0.0, degree=I(8)),
    ),
    (
        "finite_width_recursion-depth",
        lambda: fw.finite_width_recursion(jnp.tanh, 1.0, I(3), 1.0, 0.0),
    ),
    ("scale_invariant_kurtosis-depth", lambda: fw.scale_invariant_kurtosis(I(3), I(10))),
    (
        "sample_preactivations-sizes",
        lambda: fw.sample_preactivations(KEY, NET_FW, X_FW, n_networks=I(4), chunk_size=I(2)),
    ),
    (
        "second_moment_estimate-n_batches",
        lambda: fw.second_moment_estimate(jnp.ones((8, 2)), n_batches=I(2)),
    ),
    (
        "saad_solla_ode-n_records",
        lambda: mf.saad_solla_ode(EYE2, 0.1 * EYE2, EYE2, lr=0.5, alpha_max=0.1, n_records=I(3)),
    ),
    (
        "committee_online_sgd-n_steps",
        lambda: mf.committee_online_sgd(KEY, W_MF, W_MF, lr=0.5, n_steps=I(4), n_records=I(3)),
    ),
    ("meanfield_network-n_particles", lambda: mf.meanfield_network(I(4))),
    ("particle_density-bins", lambda: mf.particle_density(A_MF, WS_MF, bins=I(3))),
    (
        "particle_gradient_flow-sizes",
        lambda: mf.particle_gradient_flow(
            KEY, X_MF, Y_MF, n_particles=I(4), lr=0.1, n_steps=I(2), n_records=I(2)
        ),
    ),
    ("UVModel-n", lambda: nq.UVModel(I(4)).simulate(nq.UVModel(4).init(KEY), 0.1, I(2))),
    (
        "uv_phase_diagram-seeds-steps",
        lambda: nq.uv_phase_diagram(nq.UVModel(8), [1.0], key=KEY, seeds=I(1), steps=I(2)),
    ),
    (
        "taylor_ensemble_model-order",
        lambda: nq.taylor_ensemble_model(_nq_f, lambda k: jnp.zeros(2), I(1)),
    ),
    ("random_teacher-sizes", lambda: dl.random_teacher(KEY, I(4), I(2), [1.0], n_samples=I(5))),
    ("hierarchical_data-n_levels", lambda: dl.hierarchical_data(I(2))),
    ("mode_dynamics-depth", lambda: dl.mode_dynamics(1.0, 0.1, 1.0, depth=I(3))),
    (
        "simulate-counts",
        lambda: dl.simulate(
            KEY, DATA.x, DATA.y, (I(4),), lr=0.1, n_steps=I(2), log_every=I(1), n_seeds=I(1)
        ),
    ),
]


@pytest.mark.parametrize(
    "call", [c[1] for c in ACCEPTS_NUMPY_INTS], ids=[c[0] for c in ACCEPTS_NUMPY_INTS]
)
def test_numpy_integers_are_accepted(call):
    call()


@pytest.mark.parametrize("metric", ["rel_l2", "max_abs", "max_rel", "max_z"])
@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_nonfinite_simulation_never_passes(metric, bad):
    """A diverged seed (NaN or inf) fails every metric, at every tolerance, even inf."""
    theory = np.array([1.0, 2.0, 3.0])
    sim = np.stack([theory, theory, theory.copy()])
    sim[1, 1] = bad
    c = Comparison("d", theory, sim, ("t",), metric=metric, tolerance=INF)
    assert not c.passed
    assert not c.passes(1e300)
    assert "FAIL" in c.summary_line()


def test_finite_simulation_still_passes():
    theory = np.array([1.0, 2.0, 3.0])
    sim = theory + np.array([[0.01], [-0.01]])
    for metric in ("rel_l2", "max_abs", "max_rel", "max_z"):
        assert Comparison("ok", theory, sim, ("t",), metric=metric, tolerance=10.0).passed


def _mlp(params, x):
    h = jnp.tanh(x @ params[0])
    return h @ params[1]


def test_symmetry_check_passes_float32_curvature_operators():
    """Hessian / Gauss-Newton products in float32 are symmetric to rounding (measured
    |u·Mv − v·Mu| / ‖M‖ ~ 1e-7 on MLPs with P = 32 and 5059), far inside the √ε = 3.5e-4
    tolerance of the Lanczos check: no false alarm."""
    k1, k2, k3, k4 = jax.random.split(jax.random.key(1), 4)
    params = [jax.random.normal(k1, (3, 6)) / 2.0, jax.random.normal(k2, (6, 2)) / 4.0]
    x = jax.random.normal(k3, (16, 3))
    y = jax.random.normal(k4, (16, 2))
    for make in (cv.hessian_operator, cv.gauss_newton_operator):
        res = cv.lanczos(make(_mlp, params, x, y), KEY, 12)
        assert bool(jnp.all(jnp.isfinite(res.alpha)))


def test_nonsymmetric_operator_under_jit_is_not_checked():
    """Documented: under jit the symmetry check cannot raise (the values are traced)."""
    alpha = jax.jit(lambda k: cv.lanczos(NONSYM_OP, k, 2).alpha)(KEY)
    assert alpha.shape == (2,)


def test_checks_work_under_jit_with_constant_inputs():
    """Concrete inputs closed over inside jit/scan are checked with NumPy, not by tracing."""
    out = jax.jit(lambda t: predict.gradient_flow_mse(K, Y, t).train)(jnp.inf)
    np.testing.assert_allclose(out, Y, rtol=1e-5)
    ks = jax.jit(lambda c: fw.kernel_recursion(jnp.tanh, 1.0, 3, c, 0.0))(1.0)
    assert ks.shape == (3,) and bool(jnp.all(jnp.isfinite(ks)))
    lam = jax.jit(lambda p: nq.ntk_max_eigenvalue(_nq_f, p, jnp.eye(2) * 2.0))(jnp.zeros(2))
    assert float(lam) == pytest.approx(2.0)
    kappa = jax.vmap(lambda n: spectral.solve_kappa(LAM, n))(jnp.array([2.0, 5.0]))
    assert bool(jnp.all(kappa > 0))


def test_order_parameters_on_the_psd_boundary_are_accepted():
    """A student equal to the teacher has a singular joint covariance [[I, I], [I, I]]: valid."""
    assert abs(float(mf.committee_generalisation_error(EYE2, EYE2, EYE2))) < 1e-6
    w = jax.random.normal(KEY, (3, 50))
    q, r, t = mf.committee_order_parameters(w, w[:2])  # float32 products, PSD to rounding
    assert float(mf.committee_generalisation_error(q, r, t)) >= 0
