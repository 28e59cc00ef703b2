"""nnlab.data: shapes, keys, closed-form statistics, the experiments' own draws, jit, errors.

XLA compiles dominate this file's run time, so every test draws from the few configurations
in ``JITTABLE`` (same sizes, float64): each compiled program is reused across tests.
"""

from __future__ import annotations

import itertools
import random
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnlab.data as nd

N = 2000  # examples in the statistical checks
D = 4  # input dimension of the isotropic inputs
SIGMA = 0.3  # label noise of the teacher-student configuration


def _teacher(x):
    """A nonlinear two-output teacher."""
    return jnp.stack([jnp.tanh(x[:, 0]), x[:, 1] * x[:, 2]], axis=1)


# Jittable generators: name -> f(key) (every static argument fixed).
JITTABLE = {
    "gaussian": lambda k: nd.gaussian(k, N, D),
    "sphere": lambda k: nd.sphere(k, N, D, radius=3.0),
    "gaussian_mixture": lambda k: nd.gaussian_mixture(k, N, D, n_classes=4, separation=4.0),
    "teacher_student": lambda k: nd.teacher_student(k, N, D, teacher=_teacher, noise=SIGMA),
    "linear_teacher": lambda k: nd.linear_teacher(k, N, 40, k=3),
    "low_rank_teacher": lambda k: nd.low_rank_teacher(k, 6, 3, 2, singular_values=[2.0, 1.0]),
    "hierarchical": lambda k: nd.hierarchical(k, N, n_levels=3),
    "parity": lambda k: nd.parity(k, N, 7, 3),
    "modular_arithmetic": lambda k: nd.modular_arithmetic(k, p=5),
}
SHAPES = {  # (x shape, y shape) of JITTABLE[name]
    "gaussian": ((N, D), (N, 0)),
    "sphere": ((N, D), (N, 0)),
    "gaussian_mixture": ((N, D), (N, 4)),
    "teacher_student": ((N, D), (N, 2)),
    "linear_teacher": ((N, 40), (N, 3)),
    "low_rank_teacher": ((6, 3), (6, 2)),
    "hierarchical": ((N, 8), (N, 15)),
    "parity": ((N, 7), (N, 1)),
    "modular_arithmetic": ((25, 10), (25, 5)),
}
HOST = {
    "mnist1d": lambda k: nd.mnist1d(k, 30),
    "digits": lambda k: nd.digits(k, 30),
}


@pytest.fixture(autouse=True)
def _float64(x64):
    """Theory checks in float64 (and one dtype keeps the compiled programs shared)."""
    yield


def _equal(a: nd.Dataset, b: nd.Dataset) -> bool:
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(a, b))


# ---------------------------------------------------------------- shapes, dtypes, keys, jit
@pytest.mark.parametrize("name", sorted(JITTABLE))
def test_shapes_dtypes_and_keys(name, key):
    data = JITTABLE[name](key)
    assert isinstance(data, nd.Dataset)
    assert (data.x.shape, data.y.shape) == SHAPES[name]
    assert data.x.dtype == data.y.dtype == jnp.float64  # the default float under x64
    assert _equal(data, JITTABLE[name](jax.random.key(0)))  # the key fixes the draw
    assert not _equal(data, JITTABLE[name](jax.random.key(1)))


def test_jit_and_vmap(key):
    # One compiled program for every jittable generator and a vmap over keys.
    def everything(k):
        out = {name: fn(k) for name, fn in JITTABLE.items()}
        out["vmap_parity"] = jax.vmap(JITTABLE["parity"])(jax.random.split(k, 3))
        return out

    jitted = jax.jit(everything)(key)
    for name, fn in JITTABLE.items():
        # The same draw as eager; float64 rounding only (XLA may fuse arithmetic differently).
        for eager, traced in zip(fn(key), jitted[name]):
            np.testing.assert_allclose(traced, eager, rtol=1e-12, atol=1e-12, err_msg=name)
    batch = jitted["vmap_parity"]
    assert batch.x.shape == (3, N, 7) and batch.y.shape == (3, N, 1)
    second = JITTABLE["parity"](jax.random.split(key, 3)[1])
    assert _equal(jax.tree.map(lambda a: a[1], batch), second)


def test_dtypes(key):
    with jax.enable_x64(False):
        data = nd.gaussian(key, 6, 3)
        assert data.x.dtype == data.y.dtype == jnp.float32  # JAX's default float without x64
    data = nd.parity(key, 6, 5, 2, dtype=jnp.float32)
    assert data.x.dtype == data.y.dtype == jnp.float32
    assert nd.hierarchical(n_levels=1, dtype=jnp.float32).y.dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(HOST))
def test_host_generators(name, key):
    data = HOST[name](key)
    assert data.y.shape == (30, 10)
    assert data.x.shape == ((30, 40) if name == "mnist1d" else (30, 64))
    np.testing.assert_array_equal(data.y.sum(1), 1.0)  # one-hot rows
    assert _equal(data, HOST[name](jax.random.key(0)))
    assert not _equal(data, HOST[name](jax.random.key(1)))
    with pytest.raises(TypeError, match="outside"):
        jax.jit(HOST[name])(key)


# ---------------------------------------------------------------- the experiments' draws
def test_reproduces_experiment_generators(key):
    kx, kt, kw = jax.random.split(key, 3)
    # kernels / catapult: Gaussian rows projected on the sphere of radius sqrt(d).
    g = jax.random.normal(kx, (N, D))
    np.testing.assert_array_equal(
        nd.sphere(kx, N, D).x, g / jnp.linalg.norm(g, axis=1, keepdims=True) * jnp.sqrt(D)
    )
    # linearized / catapult: a sin single-index teacher shared by train and test inputs.
    w = jax.random.normal(kw, (D,))
    f = nd.single_index_target(kw, D)
    train, test = nd.gaussian(kx, N, D, target=f), nd.gaussian(kt, N, D, target=f)
    np.testing.assert_array_equal(train.x, g)
    np.testing.assert_array_equal(train.y, jnp.sin(train.x @ w / jnp.sqrt(D))[:, None])
    np.testing.assert_array_equal(test.y, jnp.sin(test.x @ w / jnp.sqrt(D))[:, None])
    # curvature's Gaussian mixture: means scaled by the separation, class i % C.
    km, kn = jax.random.split(key)
    means = 4.0 * jax.random.normal(km, (4, D))
    labels = jnp.arange(N) % 4
    mix = JITTABLE["gaussian_mixture"](key)
    np.testing.assert_array_equal(mix.x, means[labels] + jax.random.normal(kn, (N, D)))
    np.testing.assert_array_equal(mix.y.argmax(1), labels)


def test_reproduces_deeplinear_data(key):
    from nnlab import deeplinear as dl

    for levels, whitened in ((1, True), (3, True), (3, False)):
        ours = nd.hierarchical(n_levels=levels, whitened=whitened)
        assert _equal(ours, dl.hierarchical_data(levels, whitened=whitened))
    ours = JITTABLE["low_rank_teacher"](key)
    assert _equal(ours, dl.random_teacher(key, 3, 2, [2.0, 1.0], n_samples=6))


# ---------------------------------------------------------------- statistics vs closed forms
# Each check is a z-score against a closed form; 5 SE keeps the chance of a false failure
# below ~1e-5 per statistic (and the fixed key makes every run the same).
def _cov_z(x):
    """z-scores of the sample second moments xᵀx/n against I for iid N(0, I) rows.

    Each entry is a mean of n iid terms with var(x_i²) = 2 and var(x_i x_j) = 1.
    """
    n, d = x.shape
    se = np.where(np.eye(d, dtype=bool), np.sqrt(2 / n), np.sqrt(1 / n))
    return np.abs(x.T @ x / n - np.eye(d)) / se


def test_gaussian_covariance(key):
    x = np.asarray(JITTABLE["gaussian"](key).x)
    assert np.max(_cov_z(x)) < 5
    assert np.max(np.abs(x.mean(0)) * np.sqrt(N)) < 5  # mean 0, SE 1/sqrt(n)


def test_sphere_norms_and_moments(key):
    r = 3.0
    x = np.asarray(JITTABLE["sphere"](key).x)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), r, rtol=1e-13)  # exact up to rounding
    # Uniform on the sphere: E[x_j x_k] = 0 (j != k) and E[x_j⁴] = 3 r⁴ / (d (d + 2)).
    # Rows are independent: average within a row, SE from the spread across rows.
    off = (x[:, :, None] * x[:, None, :])[:, ~np.eye(D, dtype=bool)].mean(1)
    assert abs(off.mean()) / (off.std(ddof=1) / np.sqrt(N)) < 5
    fourth = (x**4).mean(1)
    expected = 3 * r**4 / (D * (D + 2))
    assert abs(fourth.mean() - expected) / (fourth.std(ddof=1) / np.sqrt(N)) < 5


def test_gaussian_mixture_statistics(key):
    c = 4
    data = JITTABLE["gaussian_mixture"](key)
    x, labels = np.asarray(data.x), np.asarray(data.y.argmax(1))
    np.testing.assert_array_equal(np.bincount(labels), N // c)  # i mod C: exactly balanced
    # Within-class residuals are N(0, I); removing the class means costs c degrees of freedom.
    resid = np.concatenate([x[labels == j] - x[labels == j].mean(0) for j in range(c)])
    assert np.max(_cov_z(resid * np.sqrt(N / (N - c)))) < 5


def test_teacher_student_targets_and_noise(key):
    clean = nd.teacher_student(key, N, D, teacher=_teacher)
    np.testing.assert_array_equal(clean.y, _teacher(clean.x))
    noisy = JITTABLE["teacher_student"](key)
    np.testing.assert_array_equal(noisy.x, clean.x)  # the noise has its own subkey
    resid = np.asarray(noisy.y - clean.y).ravel()
    # Sample variance of 2N iid N(0, σ²) draws: SE σ² sqrt(2 / (2N)); mean SE σ/sqrt(2N).
    assert abs(resid.var() - SIGMA**2) / (SIGMA**2 * np.sqrt(2 / resid.size)) < 5
    assert abs(resid.mean()) / (SIGMA / np.sqrt(resid.size)) < 5
    sph = nd.teacher_student(key, N, D, teacher=_teacher, input="sphere", radius=2.0)
    np.testing.assert_allclose(np.linalg.norm(sph.x, axis=1), 2.0, rtol=1e-13)


def test_teacher_networks(key):
    import nnlab.layers as nl

    net = nl.serial(nl.Dense(8), nl.Relu(), nl.Dense(2))
    params = net.init(jax.random.key(5), (N, D))[1]
    pair = nd.teacher_student(key, N, D, teacher=(net, params))
    np.testing.assert_allclose(pair.y, net.apply(params, pair.x), rtol=1e-12)
    assert _equal(pair, nd.teacher_student(key, N, D, teacher=(net.apply, params)))
    drawn = nd.teacher_student(key, N, D, teacher=net)  # parameters from the teacher subkey
    own = net.init(jax.random.split(key, 3)[1], (N, D))[1]
    np.testing.assert_allclose(drawn.y, net.apply(own, drawn.x), rtol=1e-12)


def test_linear_teacher(key):
    d, k, sigma = 40, 3, 0.5
    data = JITTABLE["linear_teacher"](key)
    w_fit = np.linalg.lstsq(np.asarray(data.x), np.asarray(data.y), rcond=None)[0].T * np.sqrt(d)
    w = jax.random.normal(jax.random.split(key, 3)[1], (k, d))  # the documented draw
    np.testing.assert_allclose(w_fit, w, atol=1e-10)  # noiseless: y is exactly linear in x
    # Its entries are N(0, 1): mean SE 1/sqrt(kd), variance SE sqrt(2/(kd)).
    assert abs(w_fit.mean()) * np.sqrt(k * d) < 5
    assert abs(w_fit.var() - 1) / np.sqrt(2 / (k * d)) < 5
    noisy = nd.linear_teacher(key, N, d, k, noise=sigma)
    resid = np.asarray(noisy.y - data.y).ravel()
    assert abs(resid.var() - sigma**2) / (sigma**2 * np.sqrt(2 / resid.size)) < 5


def test_parity_is_the_product_of_the_hidden_bits(key):
    d, k = 7, 3
    data = JITTABLE["parity"](key)
    x, y = np.asarray(data.x), np.asarray(data.y[:, 0])
    assert set(np.unique(x)) == {-1.0, 1.0} and set(np.unique(y)) == {-1.0, 1.0}
    # Exactly one k-subset of bits has correlation 1 with the labels: the support.
    subsets = list(itertools.combinations(range(d), k))
    corr = np.array([np.mean(y * np.prod(x[:, list(s)], axis=1)) for s in subsets])
    hits = [s for s, c in zip(subsets, corr) if c == 1.0]
    assert hits == [tuple(np.asarray(nd.parity_support(key, d, k)).tolist())]
    # Every other subset and every single bit is uncorrelated with y, as are the labels with
    # a constant (balance): each a mean of N ±1 terms, SE 1/sqrt(N); 5 SE over 42 statistics.
    assert np.max(np.abs(corr[corr != 1.0])) * np.sqrt(N) < 5
    assert np.max(np.abs(x.T @ y / N)) * np.sqrt(N) < 5
    assert abs(y.mean()) * np.sqrt(N) < 5
    fixed = nd.parity(key, N, d, 2, support=[1, 4])
    np.testing.assert_array_equal(fixed.y[:, 0], fixed.x[:, 1] * fixed.x[:, 4])


def test_hierarchical_singular_values():
    # Σ_yx = yᵀx/P: depth-k modes (multiplicity 1 for k = 0, 2^{k-1} after) with
    # s_k² = (2^{L+1-k} - 1)/P (Saxe et al. 2014), written out independently of the code.
    for levels in (1, 2, 4):
        p = 2**levels
        expected = [(2 ** (levels + 1) - 1) / p] + [
            (2 ** (levels + 1 - k) - 1) / p
            for k in range(1, levels + 1)
            for _ in range(2 ** (k - 1))
        ]
        data = nd.hierarchical(n_levels=levels)
        x, y = np.asarray(data.x), np.asarray(data.y)
        s = np.linalg.svd(y.T @ x / p, compute_uv=False)
        np.testing.assert_allclose(s**2, sorted(expected, reverse=True), rtol=1e-12)
        np.testing.assert_allclose(x.T @ x / p, np.eye(p), atol=1e-14)  # whitened
        raw = nd.hierarchical(n_levels=levels, whitened=False)
        s_raw = np.linalg.svd(np.asarray(raw.y).T @ np.asarray(raw.x) / p, compute_uv=False)
        np.testing.assert_allclose(s_raw, s / np.sqrt(p), rtol=1e-12)  # x scaled by 1/sqrt(P)


def test_hierarchical_samples_items_uniformly(key):
    p = 8
    full = np.asarray(nd.hierarchical(n_levels=3).x), np.asarray(nd.hierarchical(n_levels=3).y)
    sample = JITTABLE["hierarchical"](key)
    items = np.asarray(sample.x).argmax(1)
    np.testing.assert_array_equal(sample.x, full[0][items])  # rows of the table
    np.testing.assert_array_equal(sample.y, full[1][items])
    # Item counts ~ Multinomial(N, 1/P): SE sqrt(N (1/P)(1 - 1/P)); 5 SE over 8 counts.
    counts = np.bincount(items, minlength=p)
    assert np.max(np.abs(counts - N / p)) / np.sqrt(N / p * (1 - 1 / p)) < 5


@pytest.mark.parametrize(
    ("op", "p", "rule"),
    [
        ("add", 5, lambda a, b, c: (a + b) % 5 == c),
        ("sub", 5, lambda a, b, c: (a - b) % 5 == c),
        ("mul", 5, lambda a, b, c: (a * b) % 5 == c),
        ("div", 5, lambda a, b, c: (c * b) % 5 == a),
    ],
)
def test_modular_arithmetic_table(op, p, rule, key):
    data = nd.modular_arithmetic(key, p=p, op=op)
    train, test = data.split(0.4)
    pairs = []
    for part in (train, test):
        x, y = np.asarray(part.x), np.asarray(part.y)
        a, b, c = x[:, :p].argmax(1), x[:, p:].argmax(1), y.argmax(1)
        np.testing.assert_array_equal(x.sum(1), 2.0)  # two one-hot blocks
        np.testing.assert_array_equal(y.sum(1), 1.0)
        assert np.all(rule(a, b, c))
        pairs += list(zip(a.tolist(), b.tolist()))
    every = [(a, b) for a in range(p) for b in range(p) if op != "div" or b != 0]
    assert sorted(pairs) == every  # each equation exactly once across the split
    assert len(train.x) == round(0.4 * len(every))
    subset = nd.modular_arithmetic(key, 6, p=p, op=op)
    assert _equal(subset, nd.Dataset(data.x[:6], data.y[:6]))  # a prefix of the same order


def test_mnist1d_statistics_and_global_rng(key):
    # mnist1d seeds NumPy's and random's global generators; nnlab.data restores them.
    np.random.seed(3)  # noqa: NPY002
    random.seed(3)
    before = np.random.random(), random.random()  # noqa: NPY002
    np.random.seed(3)  # noqa: NPY002
    random.seed(3)
    data = nd.mnist1d(key, 100)
    assert (np.random.random(), random.random()) == before  # noqa: NPY002
    np.testing.assert_array_equal(np.bincount(np.asarray(data.y.argmax(1))), 10)
    # The package standardises the generated set: mean 0, std 1 over all entries.
    np.testing.assert_allclose([float(data.x.mean()), float(data.x.std())], [0, 1], atol=1e-5)
    assert nd.mnist1d(key, 23).x.shape == (23, 40)


def test_digits_is_a_permutation_of_load_digits(key):
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    data = nd.digits(key)
    x = np.asarray(data.x)
    assert x.shape == (1797, 64) and x.min() == 0 and x.max() == 1
    order, reference = np.lexsort(x.T), np.lexsort((images / 16.0).T)
    np.testing.assert_allclose(x[order], images[reference] / 16.0, rtol=1e-15)
    np.testing.assert_array_equal(np.bincount(np.asarray(data.y).argmax(1)), np.bincount(labels))


# ---------------------------------------------------------------- Dataset methods
def test_split_and_to_train_data(key):
    data = JITTABLE["low_rank_teacher"](key)  # 6 examples
    train, test = data.split(4)
    assert (train.x.shape, test.x.shape) == ((4, 3), (2, 3))
    assert _equal(train, data.split(0.7)[0])  # round(0.7 * 6) = 4
    out = train.to_train_data(x_probe=data.x, test=test)
    from nnlab.train import Data

    assert isinstance(out, Data)
    assert out.x_test is test.x and out.y_train is train.y and out.x_probe is data.x
    assert train.to_train_data().x_test is None
    for bad, err in ((6, ValueError), (0, ValueError), (1.5, ValueError), (0.01, ValueError)):
        with pytest.raises(err, match="n_train"):
            data.split(bad)
    with pytest.raises(TypeError, match="n_train"):
        data.split("half")
    with pytest.raises(TypeError, match="test"):
        train.to_train_data(test=(test.x, test.y))


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda k: nd.gaussian(0, 3, 2), TypeError, "key"),
        (lambda k: nd.gaussian(k, 0, 2), ValueError, "n must be a positive int"),
        (lambda k: nd.gaussian(k, 2.5, 2), TypeError, "n must be an int"),
        (lambda k: nd.sphere(k, 3, True), TypeError, "d must be an int"),
        (lambda k: nd.sphere(k, 3, 2, radius=-1.0), ValueError, "radius"),
        (lambda k: nd.gaussian(k, 3, 2, dtype=jnp.int32), TypeError, "dtype"),
        (lambda k: nd.gaussian(k, 3, 2, target=1.0), TypeError, "target"),
        (lambda k: nd.gaussian(k, N, D, target=jnp.sum), ValueError, "target"),
        (lambda k: nd.gaussian(k, N, D, target=lambda x: x[:2]), ValueError, "target"),
        (lambda k: nd.gaussian_mixture(k, 3, 2, separation=float("nan")), ValueError, "separ"),
        (lambda k: nd.teacher_student(k, 3, 2, teacher="relu"), TypeError, "teacher"),
        (lambda k: nd.teacher_student(k, 3, 2, teacher=jnp.sin, noise=-1), ValueError, "noise"),
        (lambda k: nd.teacher_student(k, 3, 2, teacher=jnp.sin, input="cube"), ValueError, "in"),
        (lambda k: nd.teacher_student(k, 3, 2, teacher=jnp.sin, radius=2.0), ValueError, "rad"),
        (lambda k: nd.teacher_student(k, 3, 2, teacher=(jnp.sin,)), ValueError, "teacher"),
        (lambda k: nd.linear_teacher(k, 3, 2, k=0), ValueError, "k must"),
        (lambda k: nd.low_rank_teacher(k, 2, 3, 2, singular_values=[1.0]), ValueError, "n must"),
        (lambda k: nd.low_rank_teacher(k, 4, 3, 2, singular_values=[1, 1, 1]), ValueError, "sing"),
        (lambda k: nd.low_rank_teacher(k, 4, 3, 2, singular_values=[-1.0]), ValueError, "sing"),
        (lambda k: nd.single_index_target(k, 3, link=2), TypeError, "link"),
        (lambda k: nd.hierarchical(n_levels=13), ValueError, "n_levels"),
        (lambda k: nd.hierarchical(None, 5), TypeError, "key"),
        (lambda k: nd.hierarchical(k, 5, whitened=1), TypeError, "whitened"),
        (lambda k: nd.parity(k, 3, 2, 3), ValueError, "k must be <= d"),
        (lambda k: nd.parity(k, 3, 4, 2, support=[0, 0]), ValueError, "distinct"),
        (lambda k: nd.parity(k, 3, 4, 2, support=[0, 4]), ValueError, "support"),
        (lambda k: nd.parity(k, 3, 4, 2, support=[0.0, 1.0]), ValueError, "support"),
        (lambda k: nd.modular_arithmetic(k, p=1), ValueError, "p must"),
        (lambda k: nd.modular_arithmetic(k, p=5, op="pow"), ValueError, "op"),
        (lambda k: nd.modular_arithmetic(k, p=8, op="div"), ValueError, "prime"),
        (lambda k: nd.modular_arithmetic(k, 26, p=5), ValueError, "n must be <= 25"),
        (lambda k: nd.digits(k, 1798), ValueError, "1797"),
        (lambda k: nd.digits(7), TypeError, "key"),
        (lambda k: nd.mnist1d(k, 0), ValueError, "n must"),
    ],
)
def test_bad_inputs(call, error, match, key):
    with pytest.raises(error, match=match):
        call(key)


def test_static_sizes_under_jit(key):
    with pytest.raises(TypeError, match="static"):
        jax.jit(lambda k, n: nd.gaussian(k, n, 2))(key, 3)


@pytest.mark.parametrize(("module", "call"), [("mnist1d", nd.mnist1d), ("sklearn", nd.digits)])
def test_missing_optional_package(module, call, key, monkeypatch):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match="pip install"):
        call(key, 10)
