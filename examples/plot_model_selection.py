"""
Model selection with ``GridSearchCV``
=====================================

``RBIG.score`` is the mean log-likelihood of the data, so scikit-learn's
model selection tools pick parameters by *held-out log-likelihood* with no
extra code: :class:`~sklearn.model_selection.GridSearchCV` fits each
candidate on some folds and scores it on the others.

Here the grid crosses the rotation used in each layer with ``n_knots``, the
resolution of each marginal map (few knots: smooth but coarse marginals;
many knots: detailed but noisy ones).
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_swiss_roll
from sklearn.model_selection import GridSearchCV, train_test_split

from destructors import RBIG
from destructors.plotting import plot_density

FAST = os.environ.get("DESTRUCTORS_EXAMPLE_FAST") == "1"
OUTPUT = Path(os.environ.get("DESTRUCTORS_EXAMPLE_OUTPUT", "."))
N_SAMPLES = 800 if FAST else 4_000

# %%
# A two-dimensional spiral: the (x, z) coordinates of a noisy swiss roll.
X = make_swiss_roll(N_SAMPLES, noise=0.4, random_state=0)[0][:, [0, 2]] / 5.0
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# %%
# The search. ``cv=3`` fits every candidate three times; ``refit=True``
# (the default) refits the best one on all training rows.
param_grid = {
    "rotation": ["pca", "random"],
    "n_knots": [10, 30] if FAST else [10, 20, 40, 80, 160],
}
model = RBIG(random_state=0, max_layers=5 if FAST else 500)
search = GridSearchCV(model, param_grid, cv=3)
search.fit(X_train)
print(f"best parameters: {search.best_params_}")
print(f"best cross-validated log-likelihood: {search.best_score_:.3f} nats")
print(
    f"log-likelihood of the refitted best model on the test set: {search.score(X_test):.3f} nats"
)

# %%
# Mean and spread over the folds of every candidate.
results = search.cv_results_
fig, (ax_cv, ax_fit) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
for rotation in param_grid["rotation"]:
    mask = np.asarray(results["param_rotation"]) == rotation
    knots = np.asarray(results["param_n_knots"])[mask].astype(int)
    mean = results["mean_test_score"][mask]
    std = results["std_test_score"][mask]
    ax_cv.errorbar(knots, mean, yerr=std, marker="o", capsize=3, label=f"rotation={rotation!r}")
ax_cv.set_xscale("log")
ax_cv.set_xticks(param_grid["n_knots"], [str(k) for k in param_grid["n_knots"]])
ax_cv.set_xlabel("n_knots")
ax_cv.set_ylabel("held-out log-likelihood (nats)")
ax_cv.set_title("3-fold cross-validation")
ax_cv.legend()

best = search.best_estimator_
plot_density(best, X, resolution=120, ax=ax_fit)
ax_fit.scatter(*X_test.T, s=1, color="w", alpha=0.5, rasterized=True)
ax_fit.set_title("best model: log-density and test points")
ax_fit.set_aspect("equal")
ax_fit.set_xticks([])
ax_fit.set_yticks([])
OUTPUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUTPUT / "model_selection.png", dpi=72)
print(f"saved {OUTPUT / 'model_selection.png'}")
