"""float32 against float64 analytic kernels over W_std × depth × architecture.

Prints, per architecture, the worst normalised error ``max |K32 - K64| / sqrt(K_ii K_jj)``
of the NNGP and the NTK for every (W_std, depth), then a summary: NaN/inf counts where the
float64 kernel is representable in float32, non-PSD counts (``λ_min(K32) < -tol λ_max``
with the tests' tolerance), the worst error in units of ``eps32 · (depth + 1)`` and as a
fraction of the tests' bound (``grid_rtol``), and the cells whose float64 kernel is outside
float32's range (not compared).

The grid, its tolerances and their justification live in tests/test_float32_kernels.py;
this script imports them, so the table is exactly what the slow test asserts.
Run: ``python benchmarks/float32_grid.py [ARCH ...]`` (default: all).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests" / "test_float32_kernels.py"


def _load_tests():
    spec = importlib.util.spec_from_file_location("test_float32_kernels", TESTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fmt(stats) -> str:
    if not stats["representable"]:
        return "  range"
    if stats["bad"]:
        return f"{stats['bad']:>3d} NaN"
    return f"{stats['err']:7.1e}"


def near_duplicates(t) -> None:
    """The chaotic phase's exponential sensitivity: a pair of inputs a distance δ apart.

    W_std = 3 (chaotic for Erf and Sin: the correlation map's slope at ρ = 1 is ~2 and ~4.5).
    1 - ρ grows by that slope per layer; float32 knows 1 - ρ of the first layer only to
    ~eps32 absolute (and snaps it to 0 below 8 eps32), so its error in 1 - ρ is amplified with
    it until the pair decorrelates. float64 resolves these pairs; float32 cannot.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    x0 = np.asarray(jax.random.normal(jax.random.key(0), (1, 5)), np.float32)
    xi = np.asarray(jax.random.normal(jax.random.key(5), (1, 5)), np.float32)
    print("\nnear-duplicate pair x, x + δ ξ at W_std = 3: normalised NNGP error (float64 1 - ρ)")
    print("  act  δ      " + "".join(f"| depth {d:<19d}" for d in t.DEPTHS))
    for name in ("Erf", "Sin"):
        block, readout, _ = t.ARCHITECTURES[name]
        for delta in (1e-1, 1e-2, 1e-3):
            x = np.concatenate([x0, x0 + delta * xi]).astype(np.float32)
            k32 = t.depth_kernels(block, readout, jnp.asarray(x), (3.0,), t.DEPTHS)[0][0]
            with jax.enable_x64(True):
                k64 = t.depth_kernels(
                    block, readout, jnp.asarray(x, jnp.float64), (3.0,), t.DEPTHS
                )[0][0]
            row = []
            for a32, a64 in zip(k32.astype(np.float64), k64):
                d = np.sqrt(np.diag(a64))
                err = np.max(np.abs(a32 - a64) / np.outer(d, d))
                row.append(f"| {err:7.1e} ({1 - a64[0, 1] / (d[0] * d[1]):7.1e})   ")
            print(f"  {name:<4s} {delta:<6.0e} " + "".join(row))


def main(names) -> int:
    t = _load_tests()
    failures = 0
    summary = []
    for name in names:
        start = time.perf_counter()
        kernels = t.grid(name)
        seconds = time.perf_counter() - start
        print(f"\n{name}  (float32 and float64 grids in {seconds:.1f} s)")
        print("  normalised error NNGP / NTK; 'range': float64 kernel outside float32's range")
        print("  W_std " + "".join(f"| depth {d:<11d}" for d in t.DEPTHS))
        bad = nonpsd = out_of_range = 0
        worst_units, worst_eig, worst_used = 0.0, 0.0, 0.0
        for i, w in enumerate(t.W_STDS):
            row = []
            for j, depth in enumerate(t.DEPTHS):
                cells = []
                for field in ("nngp", "ntk"):
                    k32, k64 = kernels[field]
                    s = t.cell_stats(k32[i, j], k64[i, j])
                    cells.append(_fmt(s))
                    if not s["representable"]:
                        out_of_range += 1
                        continue
                    bad += s["bad"] > 0
                    if s["bad"]:
                        continue
                    units = s["err"] / (t.EPS32 * (depth + 1))
                    worst_units = max(worst_units, units)
                    worst_eig = min(worst_eig, s["min_eig"])
                    nonpsd += s["min_eig"] < -t.psd_tol(name, depth)
                    failures += s["err"] > t.grid_rtol(name, depth)
                    worst_used = max(worst_used, s["err"] / t.grid_rtol(name, depth))
                row.append(f"| {cells[0]}/{cells[1]} ")
            print(f"  {w:5.1f} " + "".join(row))
        failures += bad + nonpsd
        summary.append((name, bad, nonpsd, worst_eig, worst_units, worst_used, out_of_range))
    cells = 2 * len(t.W_STDS) * len(t.DEPTHS)
    print(f"\nsummary (cells = W_std × depth × {{NNGP, NTK}}: {cells} per architecture)")
    print(
        f"  {'architecture':<12s} {'NaN cells':>9s} {'non-PSD':>8s} {'min λ/λmax':>11s} "
        f"{'max err/(eps32(depth+1))':>25s} {'max err/bound':>14s} {'out of range':>13s}"
    )
    for name, bad, nonpsd, eig, units, used, oor in summary:
        print(
            f"  {name:<12s} {bad:>9d} {nonpsd:>8d} {eig:>11.1e} {units:>25.1f} {used:>14.2f} "
            f"{oor:>13d}"
        )
    near_duplicates(t)
    print(f"\ncells over the tests' bounds: {failures}")
    return failures


if __name__ == "__main__":
    t = _load_tests()
    sys.exit(1 if main(sys.argv[1:] or list(t.ARCHITECTURES)) else 0)
