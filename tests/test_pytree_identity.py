"""Every nnlab pytree's structure includes its class, so jit never reuses another class's program.

jax 0.10's ``register_dataclass`` gave ``Abs()`` and ``Sign()`` equal treedefs, and the jit
cache handed one layer the compiled kernel of the other.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnlab
from nnlab import layers as nl
from nnlab._pytree import register_dataclass
from nnlab.layers._base import layer

ACTIVATIONS = [
    nl.Relu(),
    nl.Abs(),
    nl.LeakyRelu(0.1),
    nl.ABRelu(-0.3, 1.2),
    nl.Step(),
    nl.Sign(),
    nl.Erf(),
    nl.Gelu(),
    nl.Sin(),
    nl.Cos(),
    nl.Rbf(),
    nl.Gaussian(),
    nl.Monomial(2),
    nl.Tanh(),
    nl.Sigmoid(),
    nl.Softplus(),
    nl.Swish(),
    nl.Identity(),
    nl.LayerNorm(),
]


def _public_layer_objects():
    """One instance of every public layer class (activations, affine, pooling, combinators)."""
    return [
        *ACTIVATIONS,
        nl.Dense(3),
        nl.Conv(3, (2, 2)),
        nl.AvgPool((2, 2)),
        nl.GlobalAvgPool(),
        nl.Flatten(),
        nl.FanOut(2),
        nl.FanInSum(),
        nl.FanInConcat(),
        nl.serial(nl.Dense(2)),
        nl.parallel(nl.Dense(2), nl.Dense(2)),
    ]


def test_every_public_layer_class_is_covered():
    exported = {
        getattr(nl, name)
        for name in dir(nl)
        if isinstance(getattr(nl, name), type) and name not in ("Layer", "Elementwise")
    }
    covered = {type(obj) for obj in _public_layer_objects()}
    assert exported <= covered, f"add to the list: {sorted(c.__name__ for c in exported - covered)}"


def test_distinct_classes_have_distinct_treedefs():
    objects = _public_layer_objects()
    for a, b in itertools.combinations(objects, 2):
        if type(a) is type(b):
            continue
        sa, sb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
        assert sa != sb, f"{type(a).__name__} and {type(b).__name__} share a treedef"


def test_kernel_and_record_treedefs_name_their_class():
    from nnlab.kernels import Kernel
    from nnlab.train._record import TrainRecord

    assert "Kernel" in str(
        jax.tree_util.tree_structure(nnlab.kernel(nl.Dense(1), jnp.ones((2, 3))))
    )
    rec = TrainRecord(1.0, 1.0, None, None, {}, False, -1)
    assert jax.tree_util.tree_structure(rec) != jax.tree_util.tree_structure(
        _twin_of(TrainRecord, ["axes"])(1.0, 1.0, None, None, {}, False, -1)
    )
    assert jax.tree_util.tree_structure(
        Kernel(1.0, None, 1.0, 1.0)
    ) != jax.tree_util.tree_structure(_twin_of(Kernel)(1.0, None, 1.0, 1.0))


def _twin_of(cls, meta=None):
    """A class with the same fields (and defaults) as ``cls``, registered the nnlab way."""
    fields = []
    for f in dataclasses.fields(cls):
        kw = {"metadata": f.metadata}
        if f.default is not dataclasses.MISSING:
            kw["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kw["default_factory"] = f.default_factory
        fields.append((f.name, f.type, dataclasses.field(**kw)))
    twin = dataclasses.make_dataclass("Twin" + cls.__name__, fields, frozen=True)
    if meta is None:
        return register_dataclass(twin)
    names = [f.name for f in dataclasses.fields(twin)]
    return register_dataclass(twin, [n for n in names if n not in meta], list(meta))


@pytest.mark.slow
def test_many_same_field_classes_never_share_a_compiled_program():
    # Plain jax.tree_util.register_dataclass: 37-49 of 300 such classes got another's result.
    classes = []
    for i in range(300):
        cls = type(f"Same{i}", (), {"__annotations__": {"w": float}, "value": i})
        classes.append(layer(cls))

    @jax.jit
    def f(obj):
        return obj.w * 0 + type(obj).value

    wrong = [i for i, cls in enumerate(classes) if int(f(cls(1.0))) != i]
    assert wrong == []


def test_same_field_classes_get_their_own_program():
    # Fast version of the 300-class check: plain register_dataclass collided here too.
    classes = [
        layer(type(f"Few{i}", (), {"__annotations__": {"w": float}, "value": i})) for i in range(40)
    ]

    @jax.jit
    def f(obj):
        return obj.w * 0 + type(obj).value

    assert [int(f(cls(1.0))) for cls in classes] == list(range(40))
    assert len({jax.tree_util.tree_structure(cls(1.0)) for cls in classes}) == 40


def test_key_paths_are_attribute_names():
    paths = [
        jax.tree_util.keystr(p)
        for p, _ in jax.tree_util.tree_flatten_with_path(nl.Dense(3, W_std=1.5, b_std=0.1))[0]
    ]
    assert paths == [".W_std", ".b_std"]


@pytest.mark.parametrize("compute", [pytest.param("jit", marks=pytest.mark.slow), "kernel"])
def test_every_activation_kernel_equals_its_fresh_cache_value(x64, compute):
    x = jnp.array([[1.0, 0.3], [-0.4, 0.9], [0.2, -1.1]])

    def net(act):
        return nl.serial(nl.Dense(8, W_std=1.3, b_std=0.2), act, nl.Dense(1, W_std=1.3, b_std=0.2))

    if compute == "jit":
        fn = jax.jit(lambda n, x: nnlab.kernel(n, x))
    else:
        fn = nnlab.kernel
    in_one_process = [np.asarray(fn(net(act), x).ntk) for act in ACTIVATIONS]
    for act, value in zip(ACTIVATIONS, in_one_process):
        jax.clear_caches()
        fresh = np.asarray(fn(net(act), x).ntk)
        np.testing.assert_array_equal(value, fresh, err_msg=type(act).__name__)
    # and the classes really differ (so equality above is not vacuous)
    distinct = {tuple(np.round(v.ravel(), 12)) for v in in_one_process}
    assert len(distinct) >= len(ACTIVATIONS) - 2
