"""nnlab.Record: construction checks, pytree behaviour, selection, save/load, from_records."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnlab
from nnlab import train as T
from nnlab.evaluate import Comparison
from nnlab.record import CorruptRecordError, Record, load_record, save_record, stack


def _curve(t, scale=1.0, seeds=None):
    values = scale * np.exp(-t)
    if seeds is None:
        return Record({"loss": ("time", values)}, coords={"time": t}, meta={"time_unit": "time"})
    noise = np.linspace(-0.01, 0.01, seeds)[:, None]
    return Record(
        {"loss": (("seed", "time"), values + noise)},
        coords={"time": t, "seed": np.arange(seeds)},
        meta={"time_unit": "time"},
    )


def test_top_level_names():
    assert nnlab.Record is Record
    assert nnlab.save_record is save_record and nnlab.load_record is load_record


@pytest.mark.parametrize(
    ("variables", "coords", "error", "match"),
    [
        ({"x": ("time", np.ones((2, 3)))}, None, ValueError, "name every axis"),
        ({"x": (("a", "a"), np.ones((2, 2)))}, None, ValueError, "repeat"),
        ({"x": np.ones(3)}, None, TypeError, "pair"),
        ({"x": ("t", np.ones(3)), "y": ("t", np.ones(4))}, None, ValueError, "length 4"),
        ({"x": ("t", np.ones(3))}, {"t": np.ones(4)}, ValueError, "coords"),
        ({"x": ("t", np.ones(3))}, {"t": np.ones((3, 1))}, ValueError, "1-D"),
        ({"x": ((1,), np.ones(3))}, None, TypeError, "axis names"),
    ],
)
def test_bad_construction_is_an_error(variables, coords, error, match):
    with pytest.raises(error, match=match):
        Record(variables, coords)


def test_meta_must_be_static():
    with pytest.raises(TypeError, match="array"):
        Record({"x": ("t", np.ones(2))}, meta={"bad": np.ones(2)})
    with pytest.raises(TypeError, match="hashable"):
        Record({"x": ("t", np.ones(2))}, meta={"bad": {1, 2}})


def test_reading_and_selection():
    rec = _curve(np.arange(4.0), seeds=3)
    assert rec.names == ("loss",)
    assert rec.dims_of("loss") == ("seed", "time") and rec.sizes == {"seed": 3, "time": 4}
    np.testing.assert_array_equal(rec.time, np.arange(4.0))
    assert rec.time_unit == "time"
    np.testing.assert_array_equal(rec.loss, rec["loss"])
    one = rec.sel(time=2.0)
    assert one.dims_of("loss") == ("seed",)
    np.testing.assert_allclose(one.loss, np.exp(-2.0) + np.linspace(-0.01, 0.01, 3))
    np.testing.assert_array_equal(rec.isel(seed=1).loss, rec.loss[1])
    with pytest.raises(ValueError, match="no single coordinate"):
        rec.sel(time=2.5)
    with pytest.raises(KeyError, match="no variable"):
        rec["nope"]
    with pytest.raises(AttributeError):
        rec.nope


def test_jit_and_vmap():
    rec = _curve(np.arange(3.0))
    out = jax.jit(lambda r: r.replace(loss=r.loss * 2))(rec)
    np.testing.assert_allclose(out.loss, 2 * np.exp(-np.arange(3.0)))
    assert jax.tree_util.tree_structure(rec) != jax.tree_util.tree_structure(
        Record({"other": ("time", np.ones(3))}, coords={"time": np.arange(3.0)})
    )

    def simulate(key):
        return Record({"x": ("time", jax.random.normal(key, (5,)))}, {"time": jnp.arange(5.0)})

    batched = jax.vmap(simulate)(jax.random.split(jax.random.key(0), 4))
    named = batched.with_leading_axis("seed", np.arange(4))
    assert named.dims_of("x") == ("seed", "time")
    np.testing.assert_array_equal(named.time, np.arange(5.0))


def test_subclass_is_its_own_pytree():
    class Trajectory(Record):
        """A test subclass."""

    a = Trajectory({"x": ("time", np.ones(2))}, {"time": np.arange(2)})
    b = Record({"x": ("time", np.ones(2))}, {"time": np.arange(2)})
    assert jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b)
    assert type(jax.jit(lambda r: r)(a)) is Trajectory


def test_save_load_round_trip(tmp_path):
    rec = _curve(np.arange(4.0), seeds=2)
    path = tmp_path / "r.npz"
    save_record(rec, path, extra={"note": "hi"})
    back = load_record(path)
    assert back.dims_of("loss") == ("seed", "time") and back.meta == {"time_unit": "time"}
    np.testing.assert_array_equal(back.loss, rec.loss)
    np.testing.assert_array_equal(back.coord("seed"), [0, 1])
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CorruptRecordError, match=r"r\.npz"):
        load_record(path)


def test_train_record_is_a_record(tmp_path):
    data = T.Data(jnp.eye(3), jnp.ones((3, 1)), x_probe=jnp.eye(2, 3))
    rec = T.train(lambda p, x: x @ p, jnp.zeros((3, 1)), data, optimizer=optax.sgd(0.5), steps=4)
    assert isinstance(rec, Record)
    assert rec.dims_of("train_loss") == ("time",)
    assert rec.dims_of("probe_outputs") == ("time", "probe", "out0")
    np.testing.assert_array_equal(rec.time, np.arange(5))
    assert rec.time_unit == "step"
    # GD on L = (1/2n)|x p - 1|^2 with x = I_3: each coordinate p <- p + (lr/3)(1 - p), so the
    # loss is (1/2)(1 - lr/3)^(2k) exactly.
    np.testing.assert_allclose(rec.train_loss, 0.5 * (1 - 0.5 / 3) ** (2 * np.arange(5)), 1e-6)
    save_record(rec, tmp_path / "t.npz")
    back = load_record(tmp_path / "t.npz")
    assert type(back) is T.TrainRecord and back.params is None
    np.testing.assert_array_equal(back.step, rec.step)


def test_stack():
    recs = [_curve(np.arange(3.0), scale=s) for s in (1.0, 2.0)]
    out = stack(recs, "scale", [1.0, 2.0])
    assert out.dims_of("loss") == ("scale", "time")
    np.testing.assert_allclose(out.loss[1], 2 * np.exp(-np.arange(3.0)))
    with pytest.raises(ValueError, match="coordinates"):
        stack([_curve(np.arange(3.0)), _curve(np.arange(1.0, 4.0))], "s")


# ------------------------------------------------------------------ from_records


def test_from_records_aligns_by_name_and_subsets_coordinates():
    fine = np.linspace(0.0, 4.0, 41)  # the theory on a fine grid
    theory = _curve(fine)
    sim = _curve(np.arange(5.0), seeds=4)  # the simulation at the integer times
    c = Comparison.from_records("decay", theory, sim, "loss", metric="max_abs", tolerance=1e-12)
    assert c.axes == ("time",) and c.n_seeds == 4
    np.testing.assert_allclose(c.coords["time"], np.arange(5.0))
    assert c.passed  # the seed offsets are symmetric, so the seed mean is the theory


def test_from_records_transposes_to_the_theory_order():
    t, w = np.arange(3.0), np.array([10.0, 20.0])
    truth = np.exp(-t)[:, None] / w[None, :]
    theory = Record({"f": (("time", "width"), truth)}, {"time": t, "width": w})
    sim = Record(
        {"f": (("width", "seed", "time"), np.stack([truth.T, truth.T], axis=1))},
        {"time": t, "width": w},
    )
    c = Comparison.from_records("f", theory, sim, "f", metric="max_abs", tolerance=0.0)
    assert c.axes == ("time", "width") and c.passed


def test_from_records_errors_name_the_problem():
    theory = _curve(np.arange(3.0))
    with pytest.raises(ValueError, match="do not line up"):
        Comparison.from_records("x", theory, _curve(np.arange(0.5, 3.5)), "loss", tolerance=1)
    extra = Record({"loss": (("lr", "time"), np.ones((2, 3)))}, {"time": np.arange(3.0)})
    with pytest.raises(ValueError, match=r"extra axes \['lr'\]"):
        Comparison.from_records("x", theory, extra, "loss", tolerance=1)
    with pytest.raises(ValueError, match="no variable 'nope'"):
        Comparison.from_records("x", theory, theory, "nope", tolerance=1)
    with pytest.raises(TypeError, match=r"nnlab\.Record"):
        Comparison.from_records("x", theory, np.ones(3), "loss", tolerance=1)


def test_from_records_with_a_train_record_and_a_closed_form():
    # GD on a linear model from zero: the loss is (1/2)(1 - lr/3)^(2k); the theory record
    # is evaluated on every step, the run logs every other step.
    data = T.Data(jnp.eye(3), jnp.ones((3, 1)))
    rec = T.train(
        lambda p, x: x @ p,
        jnp.zeros((3, 1)),
        data,
        optimizer=optax.sgd(0.5),
        steps=8,
        log_every=2,
    )
    k = np.arange(9.0)
    theory = Record(
        {"loss": ("time", 0.5 * (1 - 0.5 / 3) ** (2 * k))}, {"time": k}, {"time_unit": "step"}
    )
    c = Comparison.from_records(
        "gd", theory, rec, ("loss", "train_loss"), metric="max_rel", tolerance=1e-5
    )
    assert c.passed and c.coords["time"].tolist() == [0, 2, 4, 6, 8]
    assert c.xlabel == "time [step]"
