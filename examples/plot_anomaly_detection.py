"""
Anomaly detection with ``score_samples``
========================================

A density model flags as anomalies the points where its density is low.
:class:`~destructors.DestructorOutlierDetector` wraps any destructor
(:class:`~destructors.RBIG` by default) in scikit-learn's outlier-detector
conventions: ``score_samples`` is the exact log-density (higher means more
normal), ``decision_function`` is negative and ``predict`` is ``-1`` for
outliers. Here it is compared with
:class:`~sklearn.ensemble.IsolationForest` and
:class:`~sklearn.neighbors.LocalOutlierFactor` on two moons with uniform
outliers, by ROC AUC and average precision on a labelled test set.
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.ensemble import IsolationForest
from sklearn.metrics import RocCurveDisplay, average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor

from destructors import RBIG, DestructorOutlierDetector

FAST = os.environ.get("DESTRUCTORS_EXAMPLE_FAST") == "1"
OUTPUT = Path(os.environ.get("DESTRUCTORS_EXAMPLE_OUTPUT", "."))
N_TRAIN = 1_000 if FAST else 5_000
GRID = 60 if FAST else 150

# %%
# Training data are clean inliers; the test set mixes fresh inliers with
# outliers drawn uniformly over a box around the data, one for every ten
# inliers.
rng = np.random.default_rng(0)
X_train = make_moons(N_TRAIN, noise=0.08, random_state=0)[0]
inliers = make_moons(N_TRAIN // 2, noise=0.08, random_state=1)[0]
outliers = rng.uniform([-1.8, -1.3], [2.8, 1.8], size=(N_TRAIN // 20, 2))
X_test = np.vstack([inliers, outliers])
is_outlier = np.r_[np.zeros(len(inliers)), np.ones(len(outliers))]

# %%
# Every detector exposes ``score_samples`` (higher = more normal), so one
# loop fits and evaluates them all.
detectors = {
    "RBIG": DestructorOutlierDetector(RBIG(random_state=0), contamination=0.01),
    "IsolationForest": IsolationForest(random_state=0),
    "LocalOutlierFactor": LocalOutlierFactor(n_neighbors=35, novelty=True),
}
anomaly_scores = {}
for name, detector in detectors.items():
    detector.fit(X_train)
    anomaly_scores[name] = -detector.score_samples(X_test)  # higher = more anomalous
    print(
        f"{name:>18}: ROC AUC {roc_auc_score(is_outlier, anomaly_scores[name]):.3f}, "
        f"average precision {average_precision_score(is_outlier, anomaly_scores[name]):.3f}"
    )

# %%
# A threshold for production: with ``contamination=0.01`` the detector
# flags a point when its log-density is below the 1st percentile of the
# training scores (``offset_``), so ``predict`` flags 1 % of the training
# rows. (The default, ``contamination="auto"``, puts the threshold where the
# fitted model itself has 1 % of its mass below it.)
rbig = detectors["RBIG"]
print(f"offset_ {rbig.offset_:.2f}; flags {np.mean(rbig.predict(X_train) == -1):.3f} "
      "of the training rows")
flagged = rbig.predict(X_test) == -1
print(
    f"RBIG at the 1% training quantile: flags {flagged.sum()} test points, "
    f"recall {flagged[is_outlier == 1].mean():.2f}, "
    f"precision {is_outlier[flagged].mean():.2f}"
)

# %%
# Score maps of RBIG (with its decision boundary, in orange) and the
# isolation forest, with the test points, and the ROC curves of all three
# detectors.
lo, hi = X_test.min(axis=0) - 0.1, X_test.max(axis=0) + 0.1
gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
grid = np.column_stack([gx.ravel(), gy.ravel()])

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
for ax, name in zip(axes[:2], ["RBIG", "IsolationForest"], strict=True):
    score = detectors[name].score_samples(grid).reshape(gx.shape)
    if name == "RBIG":  # floor the log-density so the scale shows the support
        score = np.maximum(score, score.max() - 12)
    filled = ax.contourf(gx, gy, score, levels=12, cmap="Blues")
    fig.colorbar(filled, ax=ax, label="score_samples", shrink=0.85)
    if name == "RBIG":  # where predict changes: decision_function == 0
        decision = detectors[name].decision_function(grid).reshape(gx.shape)
        ax.contour(gx, gy, decision, levels=[0.0], colors="C1", linewidths=1.0)
    ax.scatter(*inliers.T, s=2, color="k", alpha=0.4, label="test inliers", rasterized=True)
    ax.scatter(*outliers.T, s=10, color="C3", marker="x", label="test outliers")
    ax.set_title(f"{name}: score_samples")
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].legend(loc="lower left", fontsize=8)
for name, score in anomaly_scores.items():
    RocCurveDisplay.from_predictions(is_outlier, score, name=name, ax=axes[2])
axes[2].set_title("ROC on the test set")
OUTPUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUTPUT / "anomaly_detection.png", dpi=72)
print(f"saved {OUTPUT / 'anomaly_detection.png'}")
