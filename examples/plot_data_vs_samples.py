"""
Data versus samples on a real table
===================================

A quick check of any density model: draw as many rows from it as the data
have and compare the two, feature by feature and pair by pair.
:func:`destructors.plotting.plot_pairs` overlays them: histograms on the
diagonal, scatter plots of every pair of features elsewhere.

The table is four measurements of cell nuclei from scikit-learn's breast
cancer data (569 rows), modelled by :class:`~destructors.RBIG` on a
logarithmic scale: the measurements are positive and skewed, and a model of
their logarithms keeps every sample positive (its tails are unbounded in
log space, so exponentiating maps them inside ``(0, inf)``).
"""

# %%
import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from destructors import RBIG
from destructors.plotting import plot_marginals, plot_pairs

FAST = os.environ.get("DESTRUCTORS_EXAMPLE_FAST") == "1"
OUTPUT = Path(os.environ.get("DESTRUCTORS_EXAMPLE_OUTPUT", "."))

data = load_breast_cancer(as_frame=True).frame
columns = ["mean radius", "mean texture", "mean smoothness", "mean concavity"]
X = data[columns].to_numpy()
X = X[np.all(X > 0, axis=1)]  # 13 rows have a concavity of exactly 0
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# %%
# Fit on the logarithms; the log-likelihood of the data itself differs by
# the Jacobian of ``log``, ``-sum(log x)`` per row.
params = {"max_layers": 10} if FAST else {}
model = RBIG(random_state=0, validation_fraction=0.2, **params).fit(np.log(X_train))
log_det = -np.log(X_test).sum(axis=1)
print(f"RBIG: {model.n_layers_} layers, fitted in {model.fit_time_:.2f} s")
print(
    "held-out log-likelihood of the measurements: "
    f"{np.mean(model.score_samples(np.log(X_test)) + log_det):.3f} nats per row"
)

# %%
# Samples, back on the scale of the data, against all the data.
samples = np.exp(model.sample(len(X), random_state=0))
print(f"smallest sampled value of each feature: {np.round(samples.min(axis=0), 4)}")
fig = plot_pairs(X, samples, names=columns)
OUTPUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUTPUT / "data_vs_samples.png", dpi=72)

# %%
# The marginals alone, larger.
axes = plot_marginals(X, samples, names=columns)
axes[0].figure.savefig(OUTPUT / "data_vs_samples_marginals.png", dpi=72)
print(f"saved {OUTPUT / 'data_vs_samples.png'} and {OUTPUT / 'data_vs_samples_marginals.png'}")
