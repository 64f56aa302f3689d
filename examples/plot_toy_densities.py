"""
Two-dimensional toy densities
=============================

RBIG fitted to four classic 2-D data sets: two moons, concentric circles, a
pinwheel and a checkerboard. For each one the figure shows, side by side,

* the training data,
* the learned log-density ``model.score_samples`` on a grid, and
* new points drawn with ``model.sample``.

The density is exact (no variational bound), so the map is the model itself,
drawn by :func:`destructors.plotting.plot_density`, and the samples come from
the same fitted map run backwards.

About the straight edges in the log-density maps: they belong to the model,
not to the picture. Each layer's marginal maps follow the rows that layer
was fitted on between their smallest and largest value and continue with
their end slopes beyond (Gaussian tails). The points that every layer maps
by interpolation form an intersection of boxes, one per layer in its own
rotated coordinates; outside it, at least one layer extrapolates and the
density drops steeply. The dashed white line drawn on each map is the edge
of that region, computed from the fitted layers: it runs along the straight
edges.
"""

# %%
# Settings. ``DESTRUCTORS_EXAMPLE_FAST=1`` runs a reduced version (used by the
# test suite) and ``DESTRUCTORS_EXAMPLE_OUTPUT`` chooses where figures go.
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_circles, make_moons

from destructors import RBIG
from destructors.plotting import plot_density

FAST = os.environ.get("DESTRUCTORS_EXAMPLE_FAST") == "1"
OUTPUT = Path(os.environ.get("DESTRUCTORS_EXAMPLE_OUTPUT", "."))
N_SAMPLES = 2_000 if FAST else 10_000
GRID = 80 if FAST else 100
MAX_LAYERS = 10 if FAST else 500  # 500 is RBIG's default

# %%
# The data sets. Moons and circles come from scikit-learn; the pinwheel and
# the checkerboard are drawn here from a seeded generator.


def pinwheel(n, rng, arms=5):
    """Gaussian blobs stretched into curved arms around the origin."""
    radius = 1.0 + 0.3 * rng.standard_normal(n)
    width = 0.05 * rng.standard_normal(n)
    arm = rng.integers(arms, size=n)
    angle = 2 * np.pi * arm / arms + 0.25 * np.exp(radius)
    x, y = radius, width
    return 2.0 * np.column_stack(
        [x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)]
    )


def checkerboard(n, rng):
    """Uniform density on the dark squares of a 4 x 4 board."""
    x = rng.uniform(-2, 2, size=n)
    y = rng.uniform(0, 1, size=n) + 2 * rng.integers(0, 2, size=n) - 2 + np.floor(x) % 2
    return np.column_stack([x, y])


rng = np.random.default_rng(0)
datasets = {
    "two moons": make_moons(N_SAMPLES, noise=0.05, random_state=0)[0],
    "circles": make_circles(N_SAMPLES, noise=0.04, factor=0.5, random_state=0)[0],
    "pinwheel": pinwheel(N_SAMPLES, rng),
    "checkerboard": checkerboard(N_SAMPLES, rng),
}

# %%
# Fit one RBIG model per data set with the default settings; the depth is
# chosen on held-out rows (early stopping).
models = {}
for name, X in datasets.items():
    start = time.perf_counter()
    models[name] = RBIG(random_state=0, max_layers=MAX_LAYERS).fit(X)
    print(
        f"{name:>12}: {models[name].n_layers_:3d} layers, "
        f"{time.perf_counter() - start:5.2f} s, "
        f"training log-likelihood {models[name].score(X):6.3f}"
    )

# %%
# Where does each model extrapolate? Push points through the layers and flag
# those that fall outside the range of a marginal map's knots (the range of
# the rows its layer was fitted on) in any layer.


def extrapolated(model, points):
    """Whether some layer's marginal maps take each point beyond their knots."""
    outside = np.zeros(len(points), dtype=bool)
    Z = points
    for layer in model.layers_:
        for step in getattr(layer, "layers_", [layer]):  # an RBIG layer is a composite
            knots = getattr(step, "knots_x_", None)
            if knots is not None:
                below = Z < np.nanmin(knots, axis=1)
                above = Z > np.nanmax(knots, axis=1)
                outside |= (below | above).any(axis=1)
            Z = step.transform(Z)
    return outside


# %%
# Plot data, log-density and samples. The colour scale spans 10 nats below
# the maximum; lower log-densities take its lowest colour (the triangle at
# the bottom of each colour bar), their values unchanged.
fig, axes = plt.subplots(
    len(datasets), 3, figsize=(8.5, 2.5 * len(datasets)), layout="constrained"
)
for row, (name, X) in zip(axes, datasets.items(), strict=True):
    model = models[name]
    lo, hi = X.min(axis=0), X.max(axis=0)
    lo, hi = lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo)
    samples = model.sample(len(X), random_state=1)

    row[0].scatter(*X[:2000].T, s=1, alpha=0.4, color="C0", rasterized=True)
    plot_density(model, X, resolution=GRID, ax=row[1])
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    edge = extrapolated(model, np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    row[1].contour(gx, gy, edge, levels=[0.5], colors="w", linewidths=0.7, linestyles="--")
    row[2].scatter(*samples[:2000].T, s=1, alpha=0.4, color="C1", rasterized=True)
    row[0].set_ylabel(name)
    for ax in row:
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_title("data")
axes[0, 1].set_title("learned log-density")
axes[0, 2].set_title("samples")

OUTPUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUTPUT / "toy_densities.png", dpi=54)
print(f"saved {OUTPUT / 'toy_densities.png'}")
