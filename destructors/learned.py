"""A rotation whose directions are learned: projected marginals as non-Gaussian as possible.

A marginal Gaussianization removes exactly the non-Gaussianity of the
marginals it is given, so the rotation before it should expose as much as it
can. :class:`~destructors.rotation.GreedyRotation` picks the best of a few
candidates; :class:`LearnedRotation` starts from that pick and climbs, on the
orthogonal group, the summed squared 2-Wasserstein distance of the projected
marginals to N(0, 1) (the objective of sliced iterative Gaussianization and
max-sliced Wasserstein flows, Dai & Seljak 2021).

For a unit direction ``w`` and ``m`` rows, the distance of the projections
``y = X w`` to N(0, 1) is ``W2^2(w) = mean_i (y_(i) - q_i)^2``, with
``y_(i)`` sorted and ``q_i = Phi^-1((i - 0.5) / m)`` the normal quantiles.
Its gradient is ``2 / m * sum_i (y_(i) - q_i) x_(i)``, the rows taken in the
order of their projections (the sort is locally constant). Steps are Cayley
retractions ``Q <- (I - t/2 A)^-1 (I + t/2 A) Q`` along the Riemannian
gradient ``A = G Q^T - Q G^T`` (skew), with backtracking; only steps that
raise the objective are taken. Each step's generator is rounded to a fixed
grid, so that the directions found do not amplify rounding-level changes of
the data (see ``_STEP_GRID``).
"""

import numbers

import numpy as np
from scipy.special import ndtri

from ._compat import Interval, StrOptions
from ._fitkernels import first_best, ranked_by_score, rotated_marginal_kl, tie_slack
from ._sorting import rank_residuals
from ._stats import Moments, RowSample, sample_rows
from .base import check_random_state, spawn_seeds
from .registry import register_layer
from .rotation import (
    PCARotation,
    RandomRotation,
    _axis_signs,
    _check_rotatable,
    _LinearDestructor,
    score_candidates,
)

# Armijo constant: a step must gain this fraction of its first-order gain.
_ARMIJO = 1e-4
# First trial angle of a step (radians, spectral norm of t * A), the largest
# angle tried, and the halvings before a step is given up.
_FIRST_ANGLE = 0.25
_MAX_ANGLE = 0.8
# Each step's generator is rounded to a grid of this many radians. Gradient
# ascent with steps of a set angle amplifies any change of the data, rounding
# included, by roughly angle / |A| per step where the gradient A is small
# (tens of times per step in practice), so a few steps would let the last
# bits of the data choose the directions. With rounded generators a rounding
# change of the data gives the very same steps (unless a generator entry sits
# within that change of a grid boundary), and the fitted matrix inherits
# only the start's smooth dependence on the data. The spacing is irrational
# (2**-12.5): in 2-D the generator's entries are exactly the trial angles,
# 0.25 * 1.5**a * 2**-b, which a dyadic grid would put on its half-way
# points, where the last bit decides the rounding.
_STEP_GRID = 2.0**-12.5
_MAX_HALVINGS = 8
# A step must also raise the objective by this fraction of its value. Near
# the optimum the gains shrink towards rounding noise, and a climb that took
# any gain would let the last bits of the data decide how far it goes.
_REL_GAIN = 1e-7
# Of the visited points, a later one is kept only if it exposes more summed
# marginal KL than every earlier one by more than a tie (tie_slack). The KL
# estimate is piecewise constant in the directions (it bins the
# projections), so points a tiny step apart score equal up to rounding: an
# exact argmax would be decided by the last bit.
# Fewer subsample rows than this: no climb (the start is kept). A
# Wasserstein distance estimated from a handful of rows is noise, and with
# fewer rows than features a direction can align exactly with the data.
MIN_CLIMB_ROWS = 100


def normal_scores(m):
    """Normal quantiles at ``(i - 0.5) / m``, exactly antisymmetric.

    Computed for the lower half and mirrored, so the objective of a
    direction and of its opposite agree term by term.

    Parameters
    ----------
    m : int
        Number of points.

    Returns
    -------
    q : ndarray of shape (m,)
        Increasing quantiles.

    Examples
    --------
    >>> from destructors.learned import normal_scores
    >>> q = normal_scores(3)
    >>> bool(q[1] == 0.0 and q[0] == -q[2])
    True
    """
    q = np.zeros(m)
    half = m // 2
    q[:half] = ndtri((np.arange(1, half + 1) - 0.5) / m)
    q[m - half:] = -q[:half][::-1]
    return q


def wasserstein_objective(Y, q):
    """Summed squared 2-Wasserstein distances of the columns of ``Y`` to N(0, 1).

    Parameters
    ----------
    Y : ndarray of shape (m, k)
        Projections, one column per direction.
    q : ndarray of shape (m,)
        :func:`normal_scores` of ``m``.

    Returns
    -------
    value : float
        ``sum_j mean_i (Y_(i)j - q_i)^2``.
    residual : ndarray of shape (m, k)
        ``Y_ij - q_(rank of Y_ij in column j)``: ``2 / m * residual.T @ X``
        is the gradient with respect to the directions.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.learned import normal_scores, wasserstein_objective
    >>> q = normal_scores(4)
    >>> value, _ = wasserstein_objective(q[::-1, None].copy(), q)
    >>> value
    0.0
    """
    residual = rank_residuals(Y, q)
    return float(np.einsum("ij,ij->", residual, residual) / Y.shape[0]), residual


def _cayley(A, t):
    """The orthogonal ``(I - t/2 A)^-1 (I + t/2 A)`` of a skew matrix ``A``."""
    eye = np.eye(A.shape[0])
    return np.linalg.solve(eye - 0.5 * t * A, eye + 0.5 * t * A)


def climb(X, Q, k, n_steps, keep=False):
    """Raise the objective of the first ``k`` rows of ``Q`` by Cayley steps.

    Rows of ``Q`` are directions; the first ``k`` are optimized (a point on
    the Stiefel manifold), the others follow as their orthogonal complement
    (the skew generator has no block among them alone, which would leave the
    objective unchanged).

    A step is the Cayley map of the Riemannian gradient scaled to a trial
    angle and rounded entrywise to a grid of ``2**-12.5`` rad, halved until it gains
    (Armijo). The rounding makes the steps a piecewise constant function of
    the data, so a rounding-level change of the data leaves them unchanged.

    Parameters
    ----------
    X : ndarray of shape (m, d)
        Rows (already shifted).
    Q : ndarray of shape (d, d)
        Orthogonal start.
    k : int
        Directions optimized, ``1 <= k <= d``.
    n_steps : int
        Maximum number of accepted steps.

    Returns
    -------
    Q : ndarray of shape (d, d)
        Orthogonal to rounding (re-orthonormalize before use).
    path : list of float
        Objective at the start and after every accepted step; increasing,
        each step by at least ``1e-7`` of the value it starts from (smaller
        gains end the climb: they are within reach of rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.learned import climb
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.uniform(-1.7, 1.7, 2000), rng.normal(size=2000)])
    >>> c, s = np.cos(0.6), np.sin(0.6)
    >>> _, path = climb(X @ [[c, -s], [s, c]], np.eye(2), 1, 10)
    >>> bool(path[-1] > path[0])
    True
    """
    m, d = X.shape
    q = normal_scores(m)
    W = Q[:k]
    value, residual = wasserstein_objective(X @ W.T, q)
    path = [value]
    visited = [Q]
    angle = _FIRST_ANGLE
    for _ in range(n_steps):
        G = np.zeros((d, d))
        G[:k] = (2.0 / m) * (residual.T @ X)
        A = G @ Q.T
        A = A - A.T
        norm = np.linalg.norm(A, 2)
        if not (norm > 0.0 and np.isfinite(norm)):
            break
        t = angle / norm
        for _ in range(_MAX_HALVINGS):
            # Rounding half to even is odd-symmetric, so B stays skew.
            B = np.round(t * A / _STEP_GRID) * _STEP_GRID
            # First-order gain of B: <G Q^T, B> = <A, B> / 2.
            gain = 0.5 * float(np.einsum("ij,ij->", A, B))
            if gain > 0.0:
                Q_new = _cayley(B, 1.0) @ Q
                value_new, residual_new = wasserstein_objective(X @ Q_new[:k].T, q)
                if value_new >= value + max(_ARMIJO * gain, _REL_GAIN * value):
                    break
            t *= 0.5
        else:
            break
        Q, value, residual = Q_new, value_new, residual_new
        path.append(value)
        visited.append(Q)
        # Accepted at the first try: the next step may be bolder.
        angle = min(_MAX_ANGLE, 1.5 * t * norm)
    return (Q, path, visited) if keep else (Q, path)


def orthonormalize(Q):
    """The nearest orthogonal matrix (polar factor), rows signed by a fixed rule.

    The sign of each row is the one that gives a positive projection on a
    fixed generic direction (:func:`destructors.rotation._axis_signs`), so
    neither LAPACK nor a float tie decides it; the objective does not depend
    on it (N(0, 1) is symmetric).

    Parameters
    ----------
    Q : ndarray of shape (d, d)
        Orthogonal up to rounding.

    Returns
    -------
    Q : ndarray of shape (d, d)
        Orthogonal to rounding of one SVD (about 1e-15).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.learned import orthonormalize
    >>> Q = orthonormalize(np.array([[0.0, -1.0], [1.0, 1e-9]]))
    >>> bool(np.allclose(Q @ Q.T, np.eye(2), atol=1e-15))
    True
    """
    U, _, Vt = np.linalg.svd(Q)
    Q = U @ Vt
    return Q * _axis_signs(Q.T)[:, None]


@register_layer("learned", "rotation")
class LearnedRotation(_LinearDestructor):
    """An orthogonal rotation whose directions climb the projected non-Gaussianity.

    The fit takes a seeded subsample of rows, keeps the best of PCA and a few
    random rotations by their summed marginal KL divergence to N(0, 1) (as
    :class:`~destructors.rotation.GreedyRotation`), and from there takes a
    few Riemannian gradient-ascent steps on the orthogonal group (Cayley
    retraction, backtracking, only improving steps) on the summed squared
    2-Wasserstein distances of the projected marginals to N(0, 1). With many
    features only the ``n_directions`` most non-Gaussian directions of the
    start are optimized; the others are their orthogonal complement. Of the
    points the climb visits, the one exposing the most summed marginal KL
    (the greedy measure) is kept (see ``select``). The matrix is made
    exactly orthogonal at the end, each row's sign fixed by a rule no float
    tie decides.

    The subsample is chosen by global row index (:class:`~destructors._stats.RowSample`),
    so a Dask fit (one pass) gives the same layer as a NumPy fit of the same
    rows, whatever the chunking.

    Parameters
    ----------
    n_directions : int or None, default=8
        Directions optimized (at most the number of features; the rest
        follow as the start's orthogonal complement); ``None`` optimizes all
        of them. With more than 8 features, 8 were cheaper and as good or
        better in held-out likelihood (digits -96.4 vs -97.5 with all 64).
    n_steps : int, default=10
        Maximum number of accepted gradient steps; 0 keeps the greedy start.
    subsample : int, default=2000
        Rows the start and the steps see (all rows if fewer). With fewer
        than ``MIN_CLIMB_ROWS`` (100) rows there is no climb: the greedy
        start is kept.
    n_random : int, default=4
        Haar-random start candidates besides PCA.
    select : {"kl", "last"}, default="kl"
        Which point of the climb to keep: ``"kl"`` the one (the start
        included) whose projected marginals have the largest summed KL
        divergence to N(0, 1) on the subsample, the gain the next marginal
        step takes, for which the Wasserstein objective stands in (it weighs
        the tails most; a later point must exceed every earlier one by a
        relative ``1e-9``, so points a tiny step apart, which bin alike and
        score equal up to rounding, go to the earlier); ``"last"`` the last
        one, the Wasserstein optimum. ``"kl"`` was better on 2-D moons and a 4-D banana and level
        elsewhere (``benchmarks/bench_learned.py``).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the random candidates.

    Attributes
    ----------
    matrix_ : ndarray of shape (n_features, n_features)
        The orthogonal matrix; its rows are the directions, the optimized
        ones first.
    shift_ : ndarray of shape (n_features,)
        The start's shift (the subsample mean if PCA won, else zeros).
    chosen_ : {"pca", "random"}
        Which kind of candidate started the climb.
    candidate_scores_ : ndarray of shape (n_random + 1,)
        Summed marginal KL of each candidate on the subsample, PCA first.
    objective_path_ : ndarray of shape (n_iter_ + 1,)
        The objective (summed over the optimized directions) at the start and
        after each accepted step up to the one kept: increasing.
    objective_ : float
        The objective of the final matrix.
    n_iter_ : int
        Accepted steps up to the point kept.
    n_directions_ : int
        Directions optimized.
    log_det_ : float
        Zero (orthogonal).
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import LearnedRotation
    >>> rng = np.random.default_rng(0)
    >>> S = np.column_stack([rng.uniform(-1.7, 1.7, 4000), rng.normal(size=(4000, 2))])
    >>> X = S @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    >>> rot = LearnedRotation(random_state=0).fit(X)
    >>> bool(rot.objective_ > rot.objective_path_[0])
    True
    >>> bool(np.allclose(rot.matrix_ @ rot.matrix_.T, np.eye(3), atol=1e-12))
    True
    """

    _parameter_constraints: dict = {
        "n_directions": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "n_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "subsample": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_random": [Interval(numbers.Integral, 0, None, closed="left")],
        "select": [StrOptions({"kl", "last"})],
        "random_state": ["random_state"],
    }

    def __init__(self, n_directions=8, n_steps=10, subsample=2000, n_random=4,
                 select="kl", random_state=None):
        self.n_directions = n_directions
        self.n_steps = n_steps
        self.subsample = subsample
        self.n_random = n_random
        self.select = select
        self.random_state = random_state

    def _seeds(self):
        """The row-sample seed and one seed per random candidate."""
        seeds = spawn_seeds(check_random_state(self.random_state), 1 + self.n_random)
        return int(seeds[0]), seeds[1:]

    def _fit(self, X):
        _check_rotatable(X, type(self).__name__)
        row_seed, candidate_seeds = self._seeds()
        rows = sample_rows(np.arange(X.shape[0]), self.subsample, row_seed)
        return self._fit_rows(X[rows], candidate_seeds)

    def _fit_stream(self, stream):
        """One pass: the row subsample, with moments for the output bounds."""
        row_seed, candidate_seeds = self._seeds()
        moments, sample = stream.run(Moments(), RowSample(self.subsample, row_seed))
        self._fit_rows(sample.Y, candidate_seeds)
        stream.append(self, bounds=self._output_bounds(stream.bounds, moments.max_sq_norm))

    def _fit_rows(self, S, candidate_seeds):
        """Start and climb on the subsample ``S``."""
        candidates = [PCARotation()] + [RandomRotation(random_state=s) for s in candidate_seeds]
        self.candidate_scores_ = np.asarray(score_candidates(candidates, S))
        best = int(first_best(self.candidate_scores_))
        self.chosen_ = "pca" if best == 0 else "random"
        start = candidates[best]
        shift = start.shift_
        d = S.shape[1]
        k = d if self.n_directions is None else min(int(self.n_directions), d)
        Xs = S - shift
        q = normal_scores(Xs.shape[0])
        Q = start.matrix_
        if k < d:
            # The k most non-Gaussian directions of the start go first (ties
            # up to rounding by position). With k = d every direction climbs
            # and their order is left as the start's.
            per_direction = [wasserstein_objective(Xs @ row[:, None], q)[0] for row in Q]
            Q = Q[ranked_by_score(per_direction)]
        n_steps = self.n_steps if Xs.shape[0] >= MIN_CLIMB_ROWS else 0
        Q, path, visited = climb(Xs, Q, k, n_steps, keep=True)
        if self.select == "kl" and len(visited) > 1:
            # The gain of the next marginal step is the summed marginal KL;
            # the Wasserstein objective only stands in for it (it weighs
            # tails most), so keep the point of the climb that exposes most
            # by the greedy measure; a later point must beat the best
            # earlier one by more than a tie (see tie_slack).
            # (All visited points scored in one compiled pass: the summed KL of
            # destructors._entropy.marginal_kl_to_normal, to rounding.)
            kl = rotated_marginal_kl(Xs, np.stack(visited), np.zeros((len(visited), d)))
            best = 0
            for i in range(1, len(kl)):
                if kl[i] > kl[best] + tie_slack(kl[best]):
                    best = i
            Q, path = visited[best], path[: best + 1]
        Q = orthonormalize(Q)
        self.objective_path_ = np.asarray(path)
        self.objective_ = wasserstein_objective(Xs @ Q[:k].T, q)[0]
        self.n_iter_ = len(path) - 1
        self.n_directions_ = k
        return self._set_matrix(Q, shift, Q.T)

    def _n_parameters(self):
        # The climbed k-frame of R^d (d k - k (k + 1) / 2 free angles); with
        # k = d that is the whole orthogonal group. A PCA start adds its mean
        # and fixes the complement of the frame from the data as well.
        d, k = self.n_features_in_, self.n_directions_
        if self.chosen_ == "pca":
            return d + d * (d - 1) // 2
        return d * k - k * (k + 1) // 2
