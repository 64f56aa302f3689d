"""
Layer by layer: marching the data to a Gaussian
===============================================

A deep destructor is a stack of simple layers, each a marginal
Gaussianization followed by a rotation, fitted greedily: layer ``l`` is
fitted to the output of layers ``1..l-1``. This example follows two moons
through the fitted layers of an :class:`~destructors.RBIG` model, until they
look like a standard normal, and plots the per-layer diagnostics the model
records while it chooses its depth, drawn by
:func:`destructors.plotting.plot_layer_diagnostics`:

* ``train_score_`` and ``validation_score_``: mean log-likelihood after each
  layer, on the fitting rows and on the held-out rows that pick the depth;
* ``tc_reduction_``: the total correlation (multi-information) each layer
  removed. The sum of these approaches the total correlation of the data.
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from destructors import RBIG
from destructors.plotting import plot_layer_diagnostics

FAST = os.environ.get("DESTRUCTORS_EXAMPLE_FAST") == "1"
OUTPUT = Path(os.environ.get("DESTRUCTORS_EXAMPLE_OUTPUT", "."))
N_SAMPLES = 2_000 if FAST else 10_000

X, moon = make_moons(N_SAMPLES, noise=0.05, random_state=0)
model = RBIG(random_state=0).fit(X)
print(f"{model.n_layers_} layers kept, fitted in {model.fit_time_:.2f} s")

# %%
# Push the data through the fitted layers one at a time with each layer's
# own ``transform``, keeping a few snapshots. Colours mark the two moons so
# the points can be followed. The last panel is a draw from N(0, I), the
# target.
shown = [n for n in (0, 1, 2, 3, 5, 10) if n < model.n_layers_] + [model.n_layers_]
snapshots = {0: X}
Z = X
for i, layer in enumerate(model.layers_, start=1):
    Z = layer.transform(Z)
    if i in shown:
        snapshots[i] = Z

n_show = 2000
fig, axes = plt.subplots(2, 4, figsize=(8, 4.4), layout="constrained")
for ax, n in zip(axes.flat, shown, strict=False):
    ax.scatter(*snapshots[n][:n_show].T, c=moon[:n_show], s=1, cmap="coolwarm", rasterized=True)
    ax.set_title("data" if n == 0 else f"after {n} layer{'s' * (n > 1)}", fontsize=9)
reference = np.random.default_rng(0).standard_normal((n_show, 2))
axes.flat[-1].scatter(*reference.T, s=1, color="0.4", rasterized=True)
axes.flat[-1].set_title("target: N(0, I)", fontsize=9)
for ax in axes.flat[len(shown) : -1]:
    ax.set_visible(False)
for k, ax in enumerate(axes.flat):
    if k > 0:  # latent panels share the scale of a standard normal
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
OUTPUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUTPUT / "layer_by_layer.png", dpi=80)

# %%
# The diagnostics. Layers are fitted until the held-out log-likelihood stops
# improving for ``n_iter_no_change`` layers; the best depth is kept (dotted
# line) and refitted on all rows.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
plot_layer_diagnostics(model, axes)
fig.savefig(OUTPUT / "layer_diagnostics.png", dpi=80)
print(f"saved {OUTPUT / 'layer_by_layer.png'} and {OUTPUT / 'layer_diagnostics.png'}")
