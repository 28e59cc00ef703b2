r"""The leading 1/n correction: four-point vertex and NLO metric (output density: _density).

Single input, all hidden widths ``n`` (conventions of :mod:`._criticality` with
``C_W = W_std²``, ``C_b = b_std²``; Roberts, Yaida & Hanin 2021, arXiv:2106.10165, ch. 4).
Given layer ``ℓ``, every ``z_i^{(ℓ+1)}`` is Gaussian with the random variance
``Ĝ = C_b + (C_W/n) Σ_j σ(z_j^{(ℓ)})²``, so ``E[z²] = E[Ĝ]`` and the fourth
cumulant is ``κ_4 = E[z⁴] - 3E[z²]² = 3 Var(Ĝ)``. Expanding ``Var(Ĝ)`` (the
neurons of layer ℓ are independent given layer ℓ-1, and share its ``Ĝ``) gives,
with ``κ_4^{(ℓ)} = (3/n) V^{(ℓ)} + O(1/n²)``,

.. math::
   V^{(1)} = 0, \qquad
   V^{(ℓ+1)} = χ_∥² V^{(ℓ)} + C_W² (⟨σ⁴⟩_K - ⟨σ²⟩_K²)

(RYH 2021, eq. 4.90 for one input), and ``V^{(2)}`` is exact at any width. The
mean metric ``G^{(ℓ)} = E[z²] = K^{(ℓ)} + G^{\{1\}(ℓ)}/n + O(1/n²)`` follows from
the Edgeworth expansion of the single-neuron law to first order in ``κ_4``,
``E[O(z)] = ⟨O⟩_G + κ_4/(24 G²) ⟨O(z) He_4(z/√G)⟩_G``:

.. math::
   G^{\{1\}(1)} = 0, \qquad
   G^{\{1\}(ℓ+1)} = χ_∥ G^{\{1\}(ℓ)} + \frac{C_W V^{(ℓ)}}{8 K²} ⟨σ(z)² He_4(z/\sqrt K)⟩_K,

with ``He_4(x) = x⁴ - 6x² + 3``. For ``σ(z) = a_+ z`` (z>0), ``a_- z`` (z<0) and
``C_b = 0`` the law is an exact product: ``Ĝ^{(ℓ+1)} = Ĝ^{(ℓ)} R_ℓ`` with ``R_ℓ``
independent of ``Ĝ^{(ℓ)}``, so ``E[z²] = K^{(ℓ)}`` at every width and

.. math::
   \frac{E[z⁴]}{E[z²]²} - 3 = 3\left[\left(1 + \frac{m_4 - m_2²}{n m_2²}\right)^{ℓ-1} - 1\right],
   \quad m_2 = \frac{a_+² + a_-²}{2},\ m_4 = \frac{3(a_+⁴ + a_-⁴)}{2},

i.e. ``3[(1 + 5/n)^{ℓ-1} - 1]`` for ReLU (``V/K² = 5(ℓ-1)`` at leading order,
RYH 2021, §5.4; ``2`` instead of ``5`` for a linear network).

Results are :class:`nnlab.Record` s over the axis ``'layer'`` (coordinates ``ℓ = 1..L``)
and, for several widths, ``'width'``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from nnlab import _checks
from nnlab.evaluate import ScalingFit, scaling_fit
from nnlab.record import Record

from ._activation import activation_fn, as_float, check_positive_int
from ._criticality import susceptibilities
from ._gaussian import DEFAULT_DEGREE, check_degree, gaussian_expectation, he4
from ._network import read_mlp, single_input, variances


def _layers(depth: int) -> np.ndarray:
    return np.arange(1, depth + 1)


def _widths(width):
    """``(values, dims_prefix, coords)``: a scalar width gives no axis, a 1-D one ``'width'``."""
    n = as_float(width, "width", positive=True)
    if n.ndim > 1:
        raise ValueError(f"width must be a scalar or 1-D, got shape {n.shape}.")
    if n.ndim == 0:
        return n, (), {}
    return n[:, None], ("width",), {"width": n}


class FiniteWidthTheory(Record):
    r"""Layer-by-layer single-input theory to first order in 1/n (a :class:`nnlab.Record`).

    Variables, each with dims ``('layer',)`` (coordinates ``ℓ = 1..L``):

    * ``kernel``: ``K^{(ℓ)}``, the infinite-width variance;
    * ``vertex``: ``V^{(ℓ)}``, the four-point vertex (``κ_4 = 3V/n``);
    * ``metric_correction``: ``G^{\{1\}(ℓ)}`` (``E[z²] = K + G^{\{1\}}/n``);
    * ``chi_parallel``, ``chi_perp``: susceptibilities at ``K^{(ℓ)}``.

    :meth:`at_width` gives the predictions at finite widths as a record that
    :meth:`nnlab.evaluate.Comparison.from_records` lines up with a Monte Carlo record.
    """

    def excess_kurtosis(self, width) -> jax.Array:
        """``E[z⁴]/E[z²]² - 3 ≈ 3 V/(n K²)`` at leading order in ``1/n`` (scalar or 1-D width)."""
        return self.at_width(width).excess_kurtosis

    def fourth_cumulant(self, width) -> jax.Array:
        """``κ_4 = E[z⁴] - 3E[z²]² ≈ 3 V/n``."""
        return self.at_width(width).fourth_cumulant

    def second_moment(self, width) -> jax.Array:
        """``E[z²] ≈ K + G^{\\{1\\}}/n``."""
        return self.at_width(width).second_moment

    def at_width(self, width) -> Record:
        """``second_moment``, ``fourth_cumulant`` and ``excess_kurtosis`` at ``width``.

        A scalar ``width`` gives dims ``('layer',)``; a 1-D one ``('width', 'layer')``.

        Example:
          >>> import jax.numpy as jnp
          >>> th = finite_width_recursion(lambda z: jnp.maximum(z, 0.0), 1.0, 3, 2**0.5, 0.0)
          >>> rec = th.at_width([10.0, 20.0])
          >>> rec.dims_of("fourth_cumulant")
          ('width', 'layer')
          >>> [round(v, 4) for v in rec.fourth_cumulant[:, -1].tolist()]
          [3.0, 1.5]
        """
        n, prefix, coords = _widths(width)
        dims = (*prefix, "layer")
        out = _predict(self.kernel, self.vertex, self.metric_correction, n)
        coords = {**coords, "layer": self.coord("layer")}
        return Record({k: (dims, v) for k, v in out.items()}, coords, self.meta)


@jax.jit
def _predict(k, v, g1, n):
    """The ``1/n`` predictions; ``n`` is a scalar or a column ``(W, 1)`` (then rows = widths)."""
    k, v, g1 = (jnp.reshape(a, (1,) * (n.ndim - 1) + a.shape) if n.ndim else a for a in (k, v, g1))
    return {
        "second_moment": k + g1 / n,
        "fourth_cumulant": 3.0 * v / n,
        "excess_kurtosis": 3.0 * v / (n * k**2),
    }


def _scalar(value, argname: str) -> jax.Array:
    value = as_float(value, argname)
    if value.ndim != 0:
        raise ValueError(
            f"{argname} must be a scalar, got shape {value.shape}; for several values use "
            "jax.vmap and name the new axis with Record.with_leading_axis."
        )
    return value


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _recursion(activation, k1, c_w, c_b, depth, degree):
    """The scan of :func:`finite_width_recursion` (compiled once per σ, depth and degree;
    ``activation`` is static: activation layers compare by value, bound methods would not)."""
    fn = activation_fn(activation)
    tiny = jnp.sqrt(jnp.finfo(k1.dtype).tiny)

    def step(carry, _):
        k, v, g1 = carry
        par, perp = susceptibilities(fn, k, c_w, degree=degree)
        m2 = gaussian_expectation(lambda z: fn(z) ** 2, k, degree)
        m4 = gaussian_expectation(lambda z: fn(z) ** 4, k, degree)
        ks = jnp.maximum(k, tiny)
        he = gaussian_expectation(lambda z: fn(z) ** 2 * he4(z / jnp.sqrt(ks)), k, degree)
        k_next = c_b + c_w * m2
        v_next = par**2 * v + c_w**2 * (m4 - m2**2)
        g1_next = par * g1 + c_w * v * he / (8.0 * ks**2)
        return (k_next, v_next, g1_next), (k, v, g1, par, perp)

    zero = jnp.zeros_like(k1)
    return jax.lax.scan(step, (k1, zero, zero), None, length=depth)[1]


def finite_width_recursion(
    activation, k1, depth: int, W_std, b_std, *, degree: int = DEFAULT_DEGREE
) -> FiniteWidthTheory:
    """Run the ``K``, ``V`` and ``G^{\\{1\\}}`` recursions of the module docstring.

    Gaussian expectations are by the split Gauss rule of :func:`gaussian_expectation`,
    so any elementwise ``σ`` works. Works under ``jit`` and ``vmap`` (scalars in; vmap
    for sweeps). :func:`finite_width_theory` reads these arguments off a network.

    Args:
      activation: elementwise function or nnlab activation layer.
      k1: first-layer variance ``K^{(1)} = C_b + C_W |x|²/n_0``.
      depth: number of layers ``L`` (outputs for ``ℓ = 1..L``).
      W_std, b_std: weight and bias standard deviations of layers ``2..L``
        (``C_W = W_std²``, ``C_b = b_std²`` in the book's notation).
      degree: quadrature nodes per half-line.

    Returns:
      A :class:`FiniteWidthTheory` over ``('layer',)``.

    Example:
      >>> import jax.numpy as jnp
      >>> th = finite_width_recursion(lambda z: jnp.maximum(z, 0.0), 1.0, 4, 2**0.5, 0.0)
      >>> [round(v, 4) for v in th.vertex.tolist()]   # V/K² = 5(ℓ-1) for critical ReLU
      [0.0, 5.0, 10.0, 15.0]
    """
    activation_fn(activation)  # a TypeError for what is not an activation
    depth = check_positive_int(depth, "depth")
    k1 = _scalar(k1, "k1")
    c_w = jnp.square(_scalar(W_std, "W_std"))
    c_b = jnp.square(_scalar(b_std, "b_std"))
    check_degree(degree)
    dtype = jnp.result_type(k1, c_w, c_b, float)
    args = (k1.astype(dtype), c_w.astype(dtype), c_b.astype(dtype))
    try:
        hash(activation)
    except TypeError:  # unhashable (e.g. a layer with array hyperparameters): no compile cache
        out = _recursion.__wrapped__(activation, *args, depth, degree)
    else:
        out = _recursion(activation, *args, depth, degree)
    names = ("kernel", "vertex", "metric_correction", "chi_parallel", "chi_perp")
    return FiniteWidthTheory(
        {n: ("layer", o) for n, o in zip(names, out, strict=True)}, {"layer": _layers(depth)}
    )


def finite_width_theory(network, x, *, degree: int = DEFAULT_DEGREE) -> FiniteWidthTheory:
    """:func:`finite_width_recursion` for one ``nnlab.layers`` network at one input ``x``.

    ``network`` is ``serial(Dense(n, W_std, b_std), σ, ..., Dense(n, W_std, b_std))`` in the
    'standard' or 'ntk' parameterization (the network :func:`sample_preactivations`
    samples); ``K^{(1)} = b_std² + W_std² |x|²/n_0`` from the first Dense layer, and
    layers ``2..L`` must share one ``W_std`` and ``b_std``.

    Raises:
      TypeError: if ``network`` is not of that form.
      ValueError: for a single Dense layer (no activation to propagate through) or
        hidden layers with different ``W_std``/``b_std``.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> net = nl.serial(nl.Dense(64, 2**0.5, 0.0, "standard"), nl.Relu(),
      ...                 nl.Dense(64, 2**0.5, 0.0, "standard"))
      >>> th = finite_width_theory(net, jnp.ones(3))
      >>> [round(v, 4) for v in th.kernel.tolist() + th.vertex.tolist()]   # K = C_W |x|²/n_0 = 2
      [2.0, 2.0, 0.0, 20.0]
    """
    parts = read_mlp(network)
    x = single_input(x)
    if parts.depth < 2:
        raise ValueError(
            "network must have at least two Dense layers (an activation between them) for "
            f"the finite-width theory, got {parts.depth}."
        )
    hidden = parts.dense[1:]
    w_std, b_std = hidden[0].W_std, 0.0 if hidden[0].b_std is None else hidden[0].b_std
    if not _checks.is_traced([d.W_std for d in hidden] + [d.b_std for d in hidden]):
        c_w = np.array([variances(d)[0] for d in hidden])
        c_b = np.array([variances(d)[1] for d in hidden])
        if np.ptp(c_w) > 0 or np.ptp(c_b) > 0:
            raise ValueError(
                "network: Dense layers 2..L must share W_std and b_std (one C_W, C_b), got "
                f"W_std² = {c_w.tolist()}, b_std² = {c_b.tolist()}."
            )
    c_w0, c_b0 = variances(parts.dense[0])
    k1 = c_b0 + c_w0 * jnp.sum(x * x) / x.shape[0]
    return finite_width_recursion(
        parts.activation, k1, parts.depth, jnp.abs(w_std), jnp.abs(b_std), degree=degree
    )


def sweep_theory(make_network, values, axis: str, x, width, *, degree: int = DEFAULT_DEGREE):
    """:meth:`FiniteWidthTheory.at_width` of ``make_network(v)`` for each ``v``, along ``axis``.

    The swept axis comes last, dims ``(..., 'layer', axis)``, so a comparison built from
    it draws one curve per value over the layers; ``values`` are its coordinates.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnlab import layers as nl
      >>> def net(w):
      ...     return nl.serial(nl.Dense(16, w, 0.0, "standard"), nl.Relu(),
      ...                      nl.Dense(16, w, 0.0, "standard"))
      >>> rec = sweep_theory(net, [1.0, 2**0.5], "W_std", jnp.ones(2), 16)
      >>> rec.dims_of("second_moment"), [round(v, 4) for v in rec.second_moment[-1].tolist()]
      (('layer', 'W_std'), [0.5, 2.0])
    """
    _checks.function(make_network, "make_network", "make_network(value) -> network")
    if not isinstance(axis, str) or not axis:
        raise TypeError(f"axis must be an axis name such as 'W_std', got {axis!r}.")
    recs = [finite_width_theory(make_network(v), x, degree=degree).at_width(width) for v in values]
    if not recs:
        raise ValueError("values must hold at least one value to sweep over, got none.")
    out = {
        name: ((*recs[0].dims_of(name), axis), jnp.stack([r[name] for r in recs], axis=-1))
        for name in recs[0].names
    }
    return Record(out, {**recs[0].coords, axis: np.asarray(values)})


def scale_invariant_kurtosis(depth: int, width, a_plus=1.0, a_minus=0.0, *, kernel=1.0) -> Record:
    """Exact ``E[z⁴]/E[z²]² - 3`` at layers ``ℓ = 1..depth`` for ``C_b = 0`` (any ``C_W``).

    ``3[(1 + (m_4 - m_2²)/(n m_2²))^{ℓ-1} - 1]`` (module docstring); ReLU by default
    (``a_+ = 1, a_- = 0``, giving ``3[(1 + 5/n)^{ℓ-1} - 1]``).

    Args:
      depth: number of layers ``L``.
      width: ``n``, a scalar (dims ``('layer',)``) or 1-D (dims ``('width', 'layer')``).
      a_plus, a_minus: the slopes of ``σ`` for ``z > 0`` and ``z < 0``.
      kernel: ``K^{(ℓ)}``, a scalar or one value per layer (e.g.
        ``finite_width_theory(net, x).kernel``); here ``E[z²] = K^{(ℓ)}`` exactly, so
        ``fourth_cumulant = K² · excess_kurtosis`` is exact as well.

    Returns:
      A :class:`nnlab.Record` with ``excess_kurtosis`` and ``fourth_cumulant``.

    Raises:
      ValueError: for ``depth < 1``, a width that is not positive and finite, or
        ``a_+ = a_- = 0``.

    Example:
      >>> round(float(scale_invariant_kurtosis(3, 10.0).excess_kurtosis[-1]), 6)  # 3 (1.5² - 1)
      3.75
    """
    depth = check_positive_int(depth, "depth")
    n, prefix, coords = _widths(width)
    _checks.real(a_plus, "a_plus")
    _checks.real(a_minus, "a_minus")
    if not _checks.is_traced((a_plus, a_minus)) and not a_plus**2 + a_minus**2 > 0:
        raise ValueError(
            f"a_plus and a_minus must not both be 0 (the activation would vanish), got "
            f"a_plus={a_plus!r}, a_minus={a_minus!r}; ReLU is a_plus=1, a_minus=0."
        )
    k = as_float(kernel, "kernel", positive=True)
    if k.shape not in ((), (depth,)):
        raise ValueError(f"kernel must be a scalar or of shape ({depth},), got {k.shape}.")
    m2 = (a_plus**2 + a_minus**2) / 2.0
    m4 = 1.5 * (a_plus**4 + a_minus**4)
    lead = (1,) * len(prefix)
    ell = jnp.arange(depth, dtype=n.dtype).reshape((*lead, depth))
    k = k.reshape(lead + k.shape) if k.ndim else k
    kurtosis = 3.0 * ((1.0 + (m4 - m2**2) / (n * m2**2)) ** ell - 1.0)
    dims = (*prefix, "layer")
    return Record(
        {"excess_kurtosis": (dims, kurtosis), "fourth_cumulant": (dims, k**2 * kurtosis)},
        {**coords, "layer": _layers(depth)},
    )


def from_layer(record: Record, first: int) -> Record:
    """``record`` restricted to the layers ``ℓ >= first`` (by its ``'layer'`` coordinates).

    Layer 1 is exactly Gaussian at every width (``κ_4 = 0``), so a fourth-cumulant
    comparison on a log scale starts at ``first=2``. Variables without a ``'layer'`` axis are
    kept whole.

    Args:
      record: a :class:`nnlab.Record` with a ``'layer'`` axis (e.g. :meth:`FiniteWidthTheory.
        at_width`, :func:`scale_invariant_kurtosis`, :class:`BatchMoments`).
      first: the first layer kept.

    Example:
      >>> rec = from_layer(scale_invariant_kurtosis(3, 10.0), 2)
      >>> rec.coord("layer").tolist(), [round(v, 4) for v in rec.excess_kurtosis.tolist()]
      ([2, 3], [1.5, 3.75])
    """
    if not isinstance(record, Record) or "layer" not in record.sizes:
        raise TypeError(f"record must be an nnlab.Record with a 'layer' axis, got {record!r}.")
    layers = np.asarray(record.coord("layer"))
    keep = layers >= check_positive_int(first, "first")
    out = {}
    for name in record.names:
        dims = record.dims_of(name)
        index = tuple(keep if axis == "layer" else slice(None) for axis in dims)
        out[name] = (dims, record[name][index] if "layer" in dims else record[name])
    return Record(out, {**record.coords, "layer": layers[keep]}, record.meta)


def depth_exponent(record: Record, field: str = "second_moment", first: int = 1) -> ScalingFit:
    """The log-log slope of ``record[field]`` against the layer ``ℓ``, over ``ℓ >= first``.

    :func:`nnlab.evaluate.scaling_fit` of ``field`` (its mean over ``'seed'`` for a Monte Carlo
    record such as :class:`BatchMoments`) against the ``'layer'`` coordinates: e.g. the
    ``K^{(ℓ)} ~ 1/(-a_1 ℓ)`` law of the ``K* = 0`` class at criticality (exponent -1 up to
    ``O(log ℓ/ℓ)``, RYH 2021, §5.3), read on the tail ``first..L``.

    Args:
      record: a record whose ``field`` has dims ``('layer',)`` or ``('seed', 'layer')``.
      field: the variable fitted.
      first: the first layer of the fit (at least 3 layers must remain).

    Example:
      >>> import jax.numpy as jnp
      >>> th = finite_width_recursion(jnp.tanh, 1.0, 30, 1.0, 0.0)    # critical tanh, K1 = 1
      >>> round(depth_exponent(th, "kernel", first=10).exponent, 2)  # -1 - O(log ℓ/ℓ)
      -1.08
    """
    dims = record.dims_of(field)
    if dims not in (("layer",), ("seed", "layer")):
        raise ValueError(
            f"record[{field!r}] must have dims ('layer',) or ('seed', 'layer'), got {dims}."
        )
    layers = np.asarray(record.coord("layer"))
    keep = layers >= check_positive_int(first, "first")
    values = record[field] if dims == ("layer",) else record[field].mean(0)
    return scaling_fit(layers[keep], values[keep])
