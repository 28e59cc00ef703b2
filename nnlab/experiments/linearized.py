"""Wide networks train like their linearisation (Lee et al. 2019, arXiv:1902.06720).

``linearized_training`` trains ensembles of two-hidden-layer ReLU networks in the NTK
parameterisation by full-batch GD (``optax.sgd(lr)`` on the mean loss
``L = (1/2n) Σ_i (f(x_i) - y_i)²``, ``nnlab.train.width_sweep``) and compares their test
outputs over the logged steps, as :func:`nnlab.predict.network_trajectory` records, with
:func:`nnlab.predict.mse_trajectory` (GD steps, the analytic NTK):

* from ``f0 = 0``: the infinite-width ensemble mean ``μ_k = Θ(x, X) Θ⁻¹ (I - (I - ηΘ)^k) Y``
  (``η = lr / n``; the outputs at init have mean zero);
* from each member's own ``f0``: the linearised network, whose gap to the trained network
  shrinks like width^(-1/2) (the empirical NTK's own fluctuations).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnlab
from nnlab import data as nd
from nnlab import predict
from nnlab.evaluate import Comparison, power_law_comparisons
from nnlab.record import Record
from nnlab.registry import Experiment, register
from nnlab.train import width_sweep

from .kernels import _relu_net

__all__: list[str] = []  # registers its experiments; nothing to import


@dataclasses.dataclass(frozen=True)
class LinearizedConfig:
    """``linearized_training``: ``seeds`` networks per width, GD at a fraction of 2n/λ_max."""

    widths: tuple[int, ...] = (64, 128, 256, 512)
    seeds: int = 16
    n_train: int = 8
    n_test: int = 6
    dim: int = 4  # Gaussian inputs, targets sin(w·x/√dim)
    lr_fraction: float = 0.25  # of the stability edge max_learning_rate = 2n/λ_max
    steps: int = 60
    log_every: int = 12


def _linearized_training(config: LinearizedConfig, seed: int):
    kdata, kinit = jax.random.split(jax.random.key(seed))
    kx, kt, ky = jax.random.split(kdata, 3)
    n, f = config.n_train, nd.single_index_target(ky, config.dim)
    train = nd.gaussian(kx, n, config.dim, target=f)
    test = nd.gaussian(kt, config.n_test, config.dim, target=f)
    x = jnp.concatenate([train.x, test.x])
    ntk = nnlab.kernel(_relu_net(1), x, get="ntk")
    lr = config.lr_fraction * float(predict.max_learning_rate(ntk[:n, :n]))

    def make_model(width):
        net = _relu_net(width)
        return net.apply, lambda key: net.init(key, train.x.shape)[1]

    runs = width_sweep(
        make_model,
        config.widths,
        train.to_train_data(test=test, x_probe=x),
        optimizer=optax.sgd(lr),
        seeds=config.seeds,
        key=kinit,
        steps=config.steps,
        log_every=config.log_every,
    )
    sim = predict.network_trajectory(runs, n)  # ('width', 'seed', 'time', 'train'|'test', 'out0')

    def linearised(f0_train=None, f0_test=None):
        return predict.mse_trajectory(
            ntk[:n, :n], train.y, sim.time, ntk[n:, :n], lr=lr, discrete=True,
            f0_train=f0_train, f0_test=f0_test,
        )  # fmt: skip

    per_seed = lambda a, b: jax.vmap(linearised)(a, b).with_leading_axis("seed")  # noqa: E731
    lin = jax.vmap(per_seed)(sim.f_train[:, :, 0], sim.f_test[:, :, 0]).with_leading_axis("width")
    rms = np.sqrt(np.mean((sim.f_test - np.asarray(lin.f_test)) ** 2, axis=(2, 3, 4)))
    gaps = Record({"gap": (("width", "seed"), rms)}, coords={"width": sim.coord("width")})
    widest = config.widths[-1]
    mean = f"test outputs of width-{widest} networks over training (mean ± SE over seeds) vs the "
    gap = "RMS gap (over steps and test points) between the trained network and the linearised "
    return [
        Comparison.from_records(
            "ensemble_mean_test_outputs", linearised().isel(out0=0),
            sim.sel(width=widest).isel(out0=0), "f_test",  # one output: a plot over time
            # max over (steps x test points) of |mean - theory| / SE with Student-t tails
            # (seeds - 1 dof): P(|t_15| > 4.5) ~ 4e-4 per point, ~1% for 30 points. The
            # finite-width bias of the mean, O(1/width), is far below one SE here.
            metric="max_z", tolerance=4.5, description=mean + "infinite-width ensemble mean",
            xlabel="GD step", ylabel="f(x_test)",
        ),
        # The gap is dominated by the O(width^-1/2) fluctuation of the empirical NTK; 20%
        # allows seed noise with this many seeds, and fails for a slope off by > ~0.25.
        *power_law_comparisons(
            "gap_to_linearised_vs_width", gaps, "gap", exponent=-0.5, tolerances=(0.2, 0.15),
            exponent_name="gap_exponent", xlabel="width", ylabel="RMS gap", xscale="log",
            yscale="log",
            description=gap + "network with the analytic NTK and the same f0; theory c/sqrt(width)",
        )[1],
    ]  # fmt: skip


register(
    Experiment(
        name="linearized_training",
        reference="Lee et al. 2019, 'Wide neural networks of any depth evolve as linear models "
        "under gradient descent' (arXiv:1902.06720)",
        description="trained wide ReLU nets vs their linearisation and the infinite-width ensemble",
        run=_linearized_training,
        small=LinearizedConfig(),
        large=LinearizedConfig(widths=(64, 128, 256, 512, 1024, 2048, 4096), seeds=64, n_train=64,
            n_test=32, dim=16, steps=1000, log_every=50),
    )
)  # fmt: skip
