"""Linear layers: PCA, ICA and random orthogonal rotations.

Each is an affine map ``z = (x - shift_) @ matrix_.T`` whose log|det J| is the
constant ``log|det matrix_|``, computed once at fit time.
"""

import numbers
import threading

import numpy as np
from scipy.stats import special_ortho_group
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.decomposition import FastICA

from ._compat import Interval, StrOptions
from ._fitkernels import (
    centred_covariance,
    column_means,
    first_best,
    marginal_kl,
    rotated_marginal_kl,
)
from ._fused import AffineStep, FusedProgram
from ._stats import Grid, Histograms, Moments, kl_to_normal
from .base import BaseDestructor, check_random_state, fused_steps
from .registry import register_layer

# Rows GreedyRotation scores its candidates on, at most (see its docstring).
_SCORE_SUBSAMPLE = 20_000
# Rows per block of PCARotation's covariance.
_COV_BLOCK = 65_536


class _LinearDestructor(ClassNamePrefixFeaturesOutMixin, BaseDestructor):
    """Shared forward/inverse for affine layers (fitted ``shift_``, ``matrix_``)."""

    @classmethod
    def from_matrix(cls, matrix, shift=None, inverse_matrix=None, **params):
        """A fitted layer ``z = (x - shift) @ matrix.T`` from its arrays, without data.

        Parameters
        ----------
        matrix : array-like of shape (n_features, n_features)
            The linear map (invertible).
        shift : array-like of shape (n_features,) or None, default=None
            Subtracted first; ``None`` means zeros.
        inverse_matrix : array-like or None, default=None
            The inverse, computed when not given.
        **params : dict
            Constructor parameters of the layer.

        Returns
        -------
        layer : instance of cls
            Fitted.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import RandomRotation
        >>> rot = RandomRotation.from_matrix([[0.0, 1.0], [1.0, 0.0]])
        >>> rot.transform([[1.0, 2.0]]).tolist()
        [[2.0, 1.0]]
        """
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix must be square, got shape {matrix.shape}.")
        if not np.all(np.isfinite(matrix)) or abs(np.linalg.slogdet(matrix)[0]) == 0:
            raise ValueError("matrix must be finite and invertible.")
        layer = cls(**params)
        layer.n_features_in_ = matrix.shape[1]
        shift = np.zeros(matrix.shape[1]) if shift is None else shift
        return layer._set_matrix(matrix, shift, inverse_matrix)

    def _set_matrix(self, matrix, shift, inverse=None):
        self.matrix_ = np.ascontiguousarray(matrix, dtype=np.float64)
        self.shift_ = np.asarray(shift, dtype=np.float64)
        self.inverse_matrix_ = (
            np.linalg.inv(self.matrix_) if inverse is None else np.asarray(inverse)
        )
        self.log_det_ = float(np.linalg.slogdet(self.matrix_)[1])
        self._n_features_out = self.matrix_.shape[0]
        return self

    def _fused_steps(self):
        zeros = np.zeros_like(self.shift_)
        return [AffineStep(self.matrix_, self.inverse_matrix_, self.shift_, zeros, self.log_det_)]

    def _output_bounds(self, box=None, max_sq_norm=None):
        """Outer bounds of the outputs of inputs in a box or a ball, or None."""
        A, s = self.matrix_, self.shift_
        lo = np.full(A.shape[0], -np.inf)
        hi = np.full(A.shape[0], np.inf)
        with np.errstate(over="ignore", invalid="ignore"):
            if max_sq_norm is not None:
                r = np.linalg.norm(A, axis=1) * (np.sqrt(max_sq_norm) + np.linalg.norm(s))
                lo, hi = -r, r
            if box is not None:
                a, b = A * (box[0] - s), A * (box[1] - s)
                lo = np.maximum(lo, np.minimum(a, b).sum(axis=1))
                hi = np.minimum(hi, np.maximum(a, b).sum(axis=1))
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            return None
        pad = 1e-9 * np.maximum(hi - lo, np.maximum(np.abs(lo), np.abs(hi)))
        return lo - pad, hi + pad

    # The fused kernel, with this layer's one step: the layer computes exactly
    # what it computes inside a fused run of layers (see destructors._fused).
    def _program(self):
        return self._derived(
            "program", lambda: FusedProgram(self._fused_steps()),
            self.matrix_, self.inverse_matrix_, self.shift_,
        )

    def _forward(self, X):
        return self._program().forward(X)

    def _inverse(self, Z):
        return self._program().inverse(Z)


@register_layer("pca", "rotation")
class PCARotation(_LinearDestructor):
    """Rotate centred data onto its principal axes, optionally whitening.

    Parameters
    ----------
    whiten : bool, default=False
        Also divide each principal component by its standard deviation; the
        log-determinant ``-0.5 * sum(log(explained_variance_))`` is then
        accounted for. Without whitening the map is orthogonal (log-det 0).

    Attributes
    ----------
    matrix_ : ndarray of shape (n_features, n_features)
        The linear map (rows are principal axes, scaled if whitening).
    shift_ : ndarray of shape (n_features,)
        The training mean.
    explained_variance_ : ndarray of shape (n_features,)
        Variance along each axis, decreasing.
    full_rank_ : bool
        Whether every axis has variance above rounding (``d * eps`` of the
        largest). With no more rows than features, or collinear features,
        the last axes carry only rounding noise; rotation search
        (:func:`score_candidates`) then never picks this candidate, since a
        marginal step after it would blow that noise up to unit scale.
    log_det_ : float
        log|det matrix_|.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 2)) @ [[2.0, 1.0], [0.0, 0.5]]
    >>> Z = PCARotation(whiten=True).fit(X).transform(X)
    >>> bool(np.allclose(np.cov(Z.T, bias=True), np.eye(2)))
    True
    """

    _parameter_constraints: dict = {"whiten": ["boolean"]}

    def __init__(self, whiten=False):
        self.whiten = whiten

    def _fit(self, X):
        # The compiled sweeps give NumPy's numbers for C-ordered rows (NumPy
        # sums other layouts in another order); a deep model's are C-ordered.
        compiled = X.flags.c_contiguous
        mean = column_means(X) if compiled else X.mean(axis=0)
        d = X.shape[1]
        if X.shape[0] <= _COV_BLOCK:  # (small: the copy costs little)
            with np.errstate(over="ignore", invalid="ignore"):
                if compiled:
                    cov = centred_covariance(X, mean).reshape(d, d)
                else:
                    cov = np.cov(X - mean, rowvar=False, bias=True).reshape(d, d)
            return self._fit_moments(mean, cov)
        cov = np.zeros((d, d))
        # Co-moments of centred blocks of rows: a copy of one block at a time,
        # not of all the data (np.cov of centred data holds two).
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, X.shape[0], _COV_BLOCK):
                centred = X[start:start + _COV_BLOCK] - mean
                cov += centred.T @ centred
            cov /= X.shape[0]
        return self._fit_moments(mean, cov)

    def _fit_stream(self, stream):
        """One pass of moments (count, mean, co-moments) of the stream."""
        n, mean, comoment, max_sq = stream.run(Moments())[0]
        with np.errstate(over="ignore", invalid="ignore"):
            self._fit_moments(mean, comoment / n)
        stream.append(self, bounds=self._output_bounds(stream.bounds, max_sq))

    @classmethod
    def from_moments(cls, mean, cov, **params):
        """A fitted PCA rotation from the data's mean and (biased) covariance.

        Parameters
        ----------
        mean : array-like of shape (n_features,)
            The mean.
        cov : array-like of shape (n_features, n_features)
            The covariance.
        **params : dict
            Constructor parameters (``whiten``).

        Returns
        -------
        layer : PCARotation
            Fitted, as :meth:`fit` on data with these moments.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import PCARotation
        >>> rot = PCARotation.from_moments(np.zeros(2), np.diag([1.0, 4.0]))
        >>> rot.explained_variance_.tolist()
        [4.0, 1.0]
        """
        layer = cls(**params)
        cov = np.asarray(cov, dtype=np.float64)
        layer.n_features_in_ = cov.shape[0]
        return layer._fit_moments(np.asarray(mean, dtype=np.float64), cov)

    def _fit_moments(self, mean, cov):
        """Fit from the mean and the (biased) covariance of the data."""
        if not np.all(np.isfinite(cov)):
            raise ValueError(
                "PCARotation: the covariance of the training data overflows float64; "
                "rescale the data."
            )
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.maximum(eigval[order], 0.0), eigvec[:, order]
        d = cov.shape[0]
        eigvec *= _axis_signs(eigvec)
        self.explained_variance_ = eigval
        tiny = np.finfo(np.float64).eps * max(eigval.max(), 1e-300) * d
        self.full_rank_ = bool(eigval.min() > tiny)
        if self.whiten:
            # Variances near float64's smallest normal number have lost their
            # digits (1e-200 data square to 0): that is the data's scale, not
            # their rank, and the remedy differs.
            if eigval.max() < np.finfo(np.float64).tiny / np.finfo(np.float64).eps:
                raise ValueError(
                    "PCARotation(whiten=True): the variances of the training data "
                    f"underflow float64 (the largest is {eigval.max():.3g}); rescale the data."
                )
            if not self.full_rank_:
                raise ValueError(
                    "PCARotation(whiten=True) needs a full-rank covariance; the "
                    "training data lie in a lower-dimensional subspace."
                )
            scale = 1.0 / np.sqrt(eigval)
            return self._set_matrix(eigvec.T * scale[:, None], mean, eigvec * np.sqrt(eigval))
        return self._set_matrix(eigvec.T, mean, eigvec)

    def _n_parameters(self):
        # The mean, the orthogonal axes, and with whitening their scales:
        # d + d (d - 1) / 2 (+ d), as many as a full Gaussian when whitening.
        d = self.n_features_in_
        return d + d * (d - 1) // 2 + (d if self.whiten else 0)


@register_layer("ica", "rotation")
class ICARotation(_LinearDestructor):
    """Unmix the data with FastICA; the unmixing matrix's log|det| is exact.

    Parameters
    ----------
    max_iter : int, default=200
        Maximum FastICA iterations.
    tol : float, default=1e-4
        FastICA convergence tolerance.
    fun : {"logcosh", "exp", "cube"}, default="logcosh"
        FastICA contrast function.
    random_state : int, RandomState instance or None, default=None
        Seed of FastICA's initial unmixing matrix.

    Attributes
    ----------
    matrix_ : ndarray of shape (n_features, n_features)
        The unmixing matrix (whitening included).
    shift_ : ndarray of shape (n_features,)
        The training mean.
    log_det_ : float
        log|det matrix_|.
    n_iter_ : int
        Number of FastICA iterations run.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import ICARotation
    >>> rng = np.random.default_rng(0)
    >>> S = rng.uniform(-1, 1, size=(2000, 2))
    >>> X = S @ [[1.0, 0.5], [0.3, 1.0]]
    >>> ica = ICARotation(random_state=0).fit(X)
    >>> bool(np.allclose(ica.inverse_transform(ica.transform(X)), X))
    True
    """

    _parameter_constraints: dict = {
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "fun": [StrOptions({"logcosh", "exp", "cube"})],
        "random_state": ["random_state"],
    }

    def __init__(self, max_iter=200, tol=1e-4, fun="logcosh", random_state=None):
        self.max_iter = max_iter
        self.tol = tol
        self.fun = fun
        self.random_state = random_state

    def _fit(self, X):
        _check_unmixable(X, "ICARotation")
        ica = FastICA(
            whiten="unit-variance",
            fun=self.fun,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=check_random_state(self.random_state),
        )
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ica.fit(X)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            # FastICA's own messages name arrays, not the data's problem.
            raise ValueError(
                "ICARotation could not unmix the training data: FastICA's whitening "
                f"or unmixing failed ({exc}). The data are too close to singular or "
                "span too wide a range of magnitudes; drop redundant features or "
                "rescale them."
            ) from exc
        if not np.all(np.isfinite(ica.components_)):
            raise ValueError(
                "ICARotation could not unmix the training data: the unmixing matrix "
                "is not finite (the data covariance is close to singular); drop "
                "redundant features or rescale them."
            )
        self.n_iter_ = int(ica.n_iter_)
        return self._set_matrix(ica.components_, ica.mean_)

    def _n_parameters(self):
        # The mean and a general unmixing matrix.
        d = self.n_features_in_
        return d + d * d


@register_layer("random", "rotation")
class RandomRotation(_LinearDestructor):
    """A random rotation drawn from the Haar measure, seeded.

    Parameters
    ----------
    proper : bool, default=False
        Draw from SO(n) (determinant +1) instead of O(n).
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Attributes
    ----------
    matrix_ : ndarray of shape (n_features, n_features)
        The orthogonal matrix.
    shift_ : ndarray of shape (n_features,)
        Zeros: a pure rotation.
    log_det_ : float
        Zero (orthogonal).
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import RandomRotation
    >>> Q = RandomRotation(random_state=0).fit(np.zeros((2, 3))).matrix_
    >>> bool(np.allclose(Q @ Q.T, np.eye(3)))
    True
    """

    _parameter_constraints: dict = {
        "proper": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, proper=False, random_state=None):
        self.proper = proper
        self.random_state = random_state

    def _fit(self, X):
        _check_rotatable(X, "RandomRotation")
        d = X.shape[1]
        Q = self._draw(d)
        return self._set_matrix(Q, np.zeros(d), Q.T)

    def _draw(self, d):
        """The seeded Haar draw in ``d`` dimensions."""
        if not self.proper:
            return _haar_draw(d, self.random_state)
        if d == 1:
            return np.ones((1, 1))
        return special_ortho_group.rvs(d, random_state=check_random_state(self.random_state))

    def _fit_stream(self, stream):
        """No pass: the draw depends only on the dimension."""
        Q = self._draw(stream.n_features)
        self._set_matrix(Q, np.zeros(stream.n_features), Q.T)
        stream.append(self, bounds=self._output_bounds(stream.bounds))

    def _n_parameters(self):
        # Drawn from its seed, not estimated from the data.
        return 0


@register_layer("greedy", "rotation")
class GreedyRotation(_LinearDestructor):
    """Pick, among PCA and a few random rotations, the one that exposes most.

    After a marginal Gaussianization all remaining structure is total
    correlation; a rotation turns part of it into marginal non-Gaussianity,
    which the next marginal step removes. This layer fits the candidates and
    keeps the one whose outputs have the largest summed
    ``KL(marginal || N(0, 1))``, i.e. the largest greedy gain. PCA wins
    where the structure is mostly linear (e.g. image data), random
    directions where it is not (e.g. curved 2-D manifolds).

    Parameters
    ----------
    n_random : int, default=4
        Number of Haar-random candidate rotations besides PCA.
    random_state : int, RandomState instance or None, default=None
        Seed of the random candidates and of the scoring subsample.
    subsample : int, default=20_000
        Maximum number of rows the candidates are scored on: larger inputs
        are scored on a seeded subsample without replacement (the candidates
        are always fitted on every row). The score's noise at 20,000 rows is
        about a thousandth of a nat per feature, below the gaps that decide
        the choice (see ``benchmarks/results/fit.md``); scoring costs
        ``O(min(n, subsample))`` whatever the size of the data.

    Attributes
    ----------
    matrix_ : ndarray of shape (n_features, n_features)
        The chosen orthogonal matrix.
    shift_ : ndarray of shape (n_features,)
        The chosen candidate's shift (the mean for PCA, zeros otherwise).
    chosen_ : {"pca", "random"}
        Which kind of candidate won.
    candidate_scores_ : ndarray of shape (n_random + 1,)
        Summed marginal KL of each candidate's output, PCA first.
    log_det_ : float
        Zero (orthogonal).
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import GreedyRotation
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3)) @ rng.normal(size=(3, 3))
    >>> rot = GreedyRotation(random_state=0).fit(X)
    >>> rot.chosen_  # Gaussian data: all structure is linear
    'pca'
    """

    _parameter_constraints: dict = {
        "n_random": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "subsample": [Interval(numbers.Integral, 2, None, closed="left")],
    }

    def __init__(self, n_random=4, random_state=None, subsample=_SCORE_SUBSAMPLE):
        self.n_random = n_random
        self.random_state = random_state
        self.subsample = subsample

    def _fit(self, X):
        self._fit_scored(X, keep_output=False)
        return self

    def _fit_forward(self, X):
        # The winner's rotated rows are kept from the scoring when it covered
        # every row; either way bit-for-bit its _forward (destructors._fitkernels).
        self._validate_params()
        self.n_features_in_ = X.shape[1]
        Z = self._fit_scored(X, keep_output=True)
        log_det = np.zeros(X.shape[0])
        log_det += self.log_det_  # as the fused affine step accumulates it
        return Z, log_det

    def _fit_scored(self, X, keep_output):
        """Fit the candidates on all rows, score them on a seeded subsample, keep the best.

        Returns the winner's output on ``X`` when ``keep_output`` (its
        scored rows as the scoring computed them, the others rotated), else
        None. The candidates are the arrays of the
        layers :meth:`_random_candidates` would fit (the same draws), scored
        as :func:`score_candidates` scores fitted layers, without making
        them: in a deep model this runs once a layer.
        """
        rng = _seeded_generator(self.random_state, "greedy")
        d = X.shape[1]
        pca = PCARotation()
        pca.n_features_in_ = d
        pca._fit(X)
        candidates = [(pca.matrix_, pca.shift_, pca.inverse_matrix_)]
        seeds = rng.randint(0, 2**31 - 1, size=self.n_random)
        if seeds.size:
            # One check of the data for all random candidates, not one each;
            # none where the PCA moments bound every row's squared length.
            bound = X.shape[0] * (np.sum(pca.explained_variance_) + pca.shift_ @ pca.shift_)
            if not bound < _SAFE_SQ_NORM:
                _check_rotatable(X, type(self).__name__)
        zeros = np.zeros(d)
        for seed in seeds:
            Q = _haar_draw(d, int(seed))
            candidates.append((Q, zeros, Q.T))
        rows = None
        if X.shape[0] > self.subsample:
            # Drawn after the candidates' seeds, so they do not depend on it;
            # np.sort of the draw, in one pass over a mask instead of a sort.
            drawn = np.zeros(X.shape[0], dtype=bool)
            drawn[rng.choice(X.shape[0], self.subsample, replace=False)] = True
            rows = np.flatnonzero(drawn)
        keep = keep_output
        # Not even scored where it is excluded (see _excluded).
        first = 1 if _excluded([pca.full_rank_] + [True] * seeds.size)[0] else 0
        scored = candidates[first:]
        result = rotated_marginal_kl(
            X, np.stack([c[0] for c in scored]), np.stack([c[1] for c in scored]),
            np.zeros((len(scored), d)), rows=rows, keep_best=keep, every_row=True,
        )
        part, Z = result if keep else (result, None)
        scores = np.full(len(candidates), -np.inf)
        scores[first:] = part
        self._choose(candidates, scores)
        return Z

    def _fit_stream(self, stream):
        """Two passes: moments for the PCA candidate, then every candidate's histograms."""
        d = stream.n_features
        n, mean, comoment, max_sq = stream.run(Moments())[0]
        with np.errstate(over="ignore", invalid="ignore"):
            pca = PCARotation.from_moments(mean, comoment / n)
        candidates = [pca]
        for candidate in self._random_candidates():
            Q = candidate._draw(d)
            candidates.append(RandomRotation.from_matrix(Q, None, Q.T, **candidate.get_params()))
        bounds = [c._output_bounds(stream.bounds, max_sq) for c in candidates]
        if any(b is None for b in bounds):
            raise ValueError("GreedyRotation: the data are too large for float64; rescale them.")
        grids = [Grid.uniform(*b) for b in bounds]
        maps = [(c.matrix_, c.shift_) for c in candidates]
        result = stream.run(Histograms(grids, maps))[0]
        scores = [kl_to_normal(result, g, image=c).sum() for c, g in enumerate(grids)]
        scores = np.where(_excluded([getattr(c, "full_rank_", True) for c in candidates]),
                          -np.inf, scores)
        best = self._choose([(c.matrix_, c.shift_, c.inverse_matrix_) for c in candidates],
                            scores)
        # The winner's histogram is the next marginal layer's input statistics.
        stream.append(self, bounds=(result.min[best], result.max[best]),
                      hist=(grids[best], result.image(best)))

    def _random_candidates(self, rng=None):
        """The unfitted random candidates, each with its own seed (from ``rng``)."""
        rng = check_random_state(self.random_state) if rng is None else rng
        return [
            RandomRotation(random_state=seed)
            for seed in rng.randint(0, 2**31 - 1, size=self.n_random)
        ]

    def _choose(self, candidates, scores):
        """Keep the best-scoring candidate ``(matrix, shift, inverse)``; return its index.

        Ties (to :func:`~destructors._fitkernels.first_best`'s margin) go to
        the first, PCA.
        """
        self.candidate_scores_ = np.asarray(scores, dtype=np.float64)
        best = int(first_best(self.candidate_scores_))
        self.chosen_ = "pca" if best == 0 else "random"
        self._set_matrix(*candidates[best])
        return best

    def _n_parameters(self):
        # As the winner: PCA's are estimated, a random draw's are not.
        d = self.n_features_in_
        return d + d * (d - 1) // 2 if self.chosen_ == "pca" else 0


# Below this bound on the summed squared lengths of the rows, none can overflow.
_SAFE_SQ_NORM = 1e300
# Per thread, generators that are reseeded instead of made: making a
# RandomState (entropy for its first seeding) took 0.2 ms, reseeding 2 us.
_GENERATORS = threading.local()


def _seeded_generator(seed, slot):
    """``check_random_state(seed)``, reusing this thread's generator ``slot`` for an int seed.

    The generator is the same as a fresh ``RandomState(seed)`` (seeding
    resets the whole state), but it is shared: the caller uses it at once
    and keeps it nowhere.
    """
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        return check_random_state(seed)
    generators = getattr(_GENERATORS, "slots", None)
    if generators is None:
        generators = _GENERATORS.slots = {}
    rng = generators.get(slot)
    if rng is None:
        rng = generators[slot] = np.random.RandomState(0)
    rng.seed(seed)
    return rng


def _haar_draw(d, seed):
    """``scipy.stats.ortho_group.rvs(d, random_state=seed)``: a Haar draw from O(d).

    The same numbers as SciPy's (a QR of a standard normal matrix, the signs
    of ``R``'s diagonal moved into ``Q``), on a reseeded generator.
    """
    if d == 1:
        return np.ones((1, 1))
    z = _seeded_generator(seed, "haar").normal(size=(d, d))
    q, r = np.linalg.qr(z)
    diag = r.diagonal()
    q *= (diag / abs(diag))[np.newaxis, :]
    return q


# A fixed, generic direction: (i * golden ratio) mod 1, shifted to be positive.
def _reference_direction(d):
    return 0.5 + np.mod(np.arange(1, d + 1) * 0.6180339887498949, 1.0)


def _axis_signs(axes):
    """Signs that make each column of ``axes`` point along a fixed generic direction.

    The fit must not depend on LAPACK's sign choice. Taking the sign of the
    largest loading ties whenever two loadings are equal in magnitude (every
    axis of a 2-D correlation matrix is (+-1, +-1) / sqrt(2)), and then the
    last rounding bit decides. A projection on a generic direction is zero
    only for axes orthogonal to it, which symmetric data do not produce.
    """
    projection = _reference_direction(axes.shape[0]) @ axes
    return np.where(projection < 0, -1.0, 1.0)


def score_candidates(candidates, X, rows=None):
    """Fit each candidate rotation on ``X``; score its output on ``rows``.

    The score is the summed ``KL(marginal || N(0, 1))`` of the rotated data:
    after a marginal Gaussianization all structure is total correlation, and
    this is the part a rotation exposes for the next marginal step to remove
    (the greedy gain). Scoring on other rows than all of them (``rows``)
    keeps the winner's luck out of a later measurement on the rest, and
    scoring on a bounded subsample keeps the cost independent of ``n``.

    Candidates whose fitted map is one affine step (every rotation here)
    are rotated and scored in one compiled pass for all of them
    (:func:`destructors._fitkernels.rotated_marginal_kl`); any other layer
    through its own ``_forward``. The scores equal
    ``marginal_kl_to_normal(candidate.transform(X[rows])).sum()`` to
    rounding.

    Parameters
    ----------
    candidates : list of unfitted rotations
        Fitted in place.
    X : ndarray of shape (n_samples, n_features)
        Validated float64 data.
    rows : ndarray of int or None, default=None
        Rows to score on; ``None`` means all.

    Returns
    -------
    scores : list of float
        One per candidate; ``-inf`` for a rank-deficient PCA
        (``full_rank_`` False).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.rotation import PCARotation, RandomRotation, score_candidates
    >>> X = np.random.default_rng(0).uniform(size=(500, 2))
    >>> scores = score_candidates([PCARotation(), RandomRotation(random_state=0)], X)
    >>> len(scores)
    2
    """
    for candidate in candidates:
        candidate._validate_params()
        candidate.n_features_in_ = X.shape[1]
        candidate._fit(X)
    return [float(s) for s in _score_fitted(candidates, X, rows)[0]]


def _excluded(full_rank):
    """Which candidates rotation search never picks: the rank-deficient ones.

    A rank-deficient PCA (no more rows than features, or collinear features)
    has axes of rounding noise, which a marginal step after it would blow up
    to unit scale. It is excluded unless every candidate is rank-deficient
    (then there is nothing better to choose). One rule for the array,
    streamed and learned fits.
    """
    full_rank = np.asarray(full_rank, dtype=bool)
    return ~full_rank if full_rank.any() else np.zeros(full_rank.shape, dtype=bool)


def _score_fitted(candidates, X, rows=None, keep_best=False):
    """Scores of fitted candidates on ``X[rows]``, and the first best's output if asked.

    A candidate fitted as rank-deficient (``full_rank_`` False) scores -inf
    and is never the best, unless all are (:func:`_excluded`).
    """
    excluded = _excluded([getattr(c, "full_rank_", True) for c in candidates])
    if excluded.any():
        keep = [i for i, out in enumerate(excluded) if not out]
        part, Z = _score_fitted([candidates[i] for i in keep], X, rows, keep_best)
        scores = np.full(len(candidates), -np.inf)
        scores[keep] = part
        return scores, Z
    steps = [fused_steps(c) for c in candidates]
    if all(s is not None and len(s) == 1 and isinstance(s[0], AffineStep) for s in steps):
        steps = [s[0] for s in steps]
        result = rotated_marginal_kl(
            X, np.stack([s.matrix for s in steps]), np.stack([s.pre for s in steps]),
            np.stack([s.post for s in steps]), rows=rows, keep_best=keep_best,
        )
        return result if keep_best else (result, None)
    part = X if rows is None else X[rows]
    outputs = [c._forward(part)[0] for c in candidates]
    scores = np.array([marginal_kl(Z).sum() for Z in outputs])
    return scores, (outputs[int(first_best(scores))] if keep_best else None)


def _check_unmixable(X, name):
    """Refuse data FastICA cannot whiten: overflowing or singular covariance.

    FastICA whitens with ``cov ** -0.5``. A covariance that overflows float64
    makes it fail with messages about the array, or loop in the SVD; a
    singular one (a constant feature, a feature that is a combination of
    others, no more samples than features) is whitened only up to rounding,
    so the fit looks fine but neither inverts nor scores correctly.

    Rank is judged on the columns scaled to a unit maximum, so that data of
    any magnitude (1e-200 as well as 1e150) are treated alike, with the
    tolerance ``PCARotation(whiten=True)`` uses.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated, finite training data.
    name : str
        The layer's class name, for the messages.
    """
    n, d = X.shape
    rescale = f"{name}: the covariance of the training data overflows float64; rescale the data."
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X.mean(axis=0)
        centred = X - mean
        spread = np.max(np.abs(centred), axis=0)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(spread))):
        raise ValueError(rescale)
    constant = np.flatnonzero(spread == 0)
    if constant.size:
        raise ValueError(
            f"{name} needs a full-rank covariance; features {constant.tolist()} are "
            "constant, so the training data lie in a lower-dimensional subspace."
        )
    scaled = centred / spread
    cov = scaled.T @ scaled / n
    with np.errstate(over="ignore"):
        variance = np.diag(cov) * spread**2
    if not np.all(np.isfinite(variance)):
        raise ValueError(rescale)
    eigval = np.linalg.eigvalsh(cov)
    if n <= d:
        raise ValueError(
            f"{name} needs a full-rank covariance; {n} training samples of {d} "
            f"features lie in a lower-dimensional subspace (at least {d + 1} "
            "samples are needed)."
        )
    if eigval.min() <= np.finfo(np.float64).eps * eigval.max() * d:
        raise ValueError(
            f"{name} needs a full-rank covariance; the training data lie in a "
            "lower-dimensional subspace (a feature is a linear combination of "
            "others). Drop the redundant features, or use PCARotation(whiten=False)."
        )


def _check_rotatable(X, name):
    """Refuse data whose rotated rows, or their squared norms, overflow float64.

    A rotation keeps each row's length, so a row of length beyond the float64
    range (``max |x| * sqrt(n_features)`` can be) may overflow, and a row whose
    squared length overflows has log-density ``-|z|^2 / 2`` of -inf under the
    standard normal: every score of the training data itself would fail.
    ``PCARotation`` refuses such data too (its covariance overflows).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated, finite training data.
    name : str
        The layer's class name, for the message.
    """
    with np.errstate(over="ignore"):
        sq_norm = np.einsum("ij,ij->i", X, X)
    if not np.all(np.isfinite(sq_norm)):
        big = float(np.max(np.abs(X)))
        raise ValueError(
            f"{name}: the training data are too large for float64 (max |x| = "
            f"{big:.3g}, {X.shape[1]} features): the squared lengths of their rows "
            "overflow, so rotated rows cannot be scored (and may overflow "
            "themselves); rescale the data, e.g. divide by their spread."
        )
