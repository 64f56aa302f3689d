"""The Rosenblatt map of a full-covariance Gaussian mixture, as one exact layer.

A fitted mixture ``p(x) = sum_m pi_m N(x; mu_m, Sigma_m)`` factorises as
``p(x) = prod_k p(x_k | x_<k)``, and each conditional is itself a 1-D
Gaussian mixture: component ``m`` contributes the Gaussian conditional
``N(x_k; c_mk, s_mk^2)`` with weight equal to its posterior responsibility
given ``x_<k``. With the Cholesky factor ``Sigma_m = L_m L_m^T`` and
``P_m = L_m^{-T}`` (upper triangular; scikit-learn's precision Cholesky),
the whitened residual ``e_m = (x - mu_m) @ P_m`` has ``e_mk = (x_k - c_mk) /
s_mk`` with ``s_mk = 1 / P_m[k, k]``: one triangular product gives every
conditional at once.

The triangular (Rosenblatt) map is ``z_k = Phi^{-1}(F(x_k | x_<k))``. Its
Jacobian is lower triangular with diagonal ``p(x_k | x_<k) / phi(z_k)``, so
``log|det J| = sum_k [log p(x_k | x_<k) - log phi(z_k)]`` and the density of
the layer is exactly that of the mixture. Everything is computed in log
space: the responsibilities by log-sum-exp, the CDF from log-CDFs of the
components (the lower tail below 1/2, the upper tail above), and ``z`` by
:func:`scipy.special.ndtri_exp`, so the map stays exact many standard
deviations out. The inverse solves one monotone 1-D equation per
coordinate by Newton steps safeguarded by bisection.
"""

import numbers

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.special import log_ndtr, ndtri_exp
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from ._compat import Interval, StrOptions
from ._fitkernels import first_best
from .base import BaseDestructor, check_random_state
from .registry import register_layer

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_EPS = np.finfo(np.float64).eps
# Doubles per (rows x components x features) work array of one chunk.
_CHUNK_ELEMENTS = 2_000_000
_MAX_CHUNK_ROWS = 10_000
# ``n_components="auto"`` tries 1, 2, 4, ... components, at most this many,
# and stops once AUTO_PATIENCE doublings in a row have not beaten the best:
# the held-out score of a mixture rises, then falls once components start to
# fit noise, and a fixed grid either stops short on curved data (moons wants
# about 32) or wastes fits on simple data.
AUTO_MAX_COMPONENTS = 128
AUTO_PATIENCE = 2
# Fewer rows than this cannot be split for the choice: one component.
_MIN_ROWS_AUTO = 10
_VALIDATION_FRACTION = 0.2
_MAX_ROOT_ITER = 200


def _logsumexp(a, axis):
    """log(sum(exp(a))) along ``axis``, stable, ``-inf`` where all are ``-inf``."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m), axis=axis)) + np.squeeze(m, axis=axis)
    return out


def _z_from_tails(log_cdf, log_sf):
    """``Phi^{-1}`` of a probability given by both its log-CDF and log-survival.

    The smaller tail is inverted, so neither ``1 - F`` nor ``F`` is ever
    formed: ``z`` keeps full relative precision far out on either side.
    """
    lower = log_cdf <= log_sf
    return np.where(lower, ndtri_exp(np.minimum(log_cdf, 0.0)),
                    -ndtri_exp(np.minimum(log_sf, 0.0)))


def _log_phi(z):
    return -0.5 * z * z - _HALF_LOG_2PI


def _conditional_1d(e, log_w, log_p_diag):
    """The 1-D conditional mixture at whitened residuals ``e`` (rows x components).

    Returns ``z``, ``log p(x_k | x_<k)`` and the components' ``log N`` terms.
    """
    log_n = -0.5 * e * e + log_p_diag - _HALF_LOG_2PI
    log_cdf = _logsumexp(log_w + log_ndtr(e), axis=1)
    log_sf = _logsumexp(log_w + log_ndtr(-e), axis=1)
    z = _z_from_tails(log_cdf, log_sf)
    log_p = _logsumexp(log_w + log_n, axis=1)
    return z, log_p, log_n


@register_layer("gaussian-mixture", "layer")
class GaussianMixtureDestructor(ClassNamePrefixFeaturesOutMixin, BaseDestructor):
    """The exact triangular map of a fitted full-covariance Gaussian mixture.

    A :class:`sklearn.mixture.GaussianMixture` is fitted to the data, and
    the layer is its Rosenblatt transform ``z_k = Phi^{-1}(F(x_k | x_<k))``:
    each conditional ``F(x_k | x_<k)`` is a 1-D Gaussian mixture whose
    components are the Gaussian conditionals of the mixture's components,
    weighted by their responsibilities given ``x_<k``. The map is a
    bijection onto ``R^d``; data drawn from the mixture come out standard
    normal, and :meth:`score_samples` equals ``mixture_.score_samples``.

    CDFs are combined from the components' log-CDFs, lower or upper tail, so
    ``z`` and the log-determinant stay finite and exact tens of standard
    deviations from the data. The inverse solves each coordinate by
    Newton's method safeguarded by bisection in a bracket from the
    component quantiles, to full double precision. Rows are processed in
    chunks, so memory is ``O(chunk x n_components x n_features)``.

    The inverse is exact wherever the map is well-conditioned. Where the
    mixture has well-separated clusters, a conditional CDF is nearly flat in
    the gaps between its components, and far from the data (in directions
    where the responsibilities given ``x_<k`` favour another component than
    the one covering ``x_k``) such a gap can be so deep that ``z_k`` does not
    change in double precision over a long stretch of ``x_k``. There no
    inverse can recover ``x``: ``inverse_transform`` returns a point of the
    stretch, which maps back to the same ``z``.

    The mixture is fitted in memory only: a Dask array cannot be fitted
    (``fit`` raises ``NotImplementedError``). Fit on a NumPy sample; the
    fitted layer then transforms, inverts and scores Dask arrays block by
    block.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Number of mixture components. ``"auto"`` fits ``1, 2, 4, ...``
        components (at most 128, and only with at least ``n_features + 1``
        fitting rows per component) on a seeded 80% of the rows, stops once
        two doublings in a row have not beaten the best mean log-likelihood
        of the other 20%, keeps the best and refits it on all rows; with
        fewer than 10 rows it uses one component.
    covariance_type : {"full"}, default="full"
        Only full covariances (the map needs the Gaussian conditionals).
    reg_covar : float, default=1e-6
        Added to the covariance diagonals (in squared data units).
    max_iter : int, default=200
        Maximum EM iterations.
    n_init : int, default=1
        Number of EM initialisations; the best is kept.
    n_average : int, default=1
        Number of mixtures of the chosen size fitted from different seeds
        and averaged with equal weights: the model is then one mixture of
        ``n_average * k`` components (``n_components_``). By concavity of
        the logarithm, the average's log-likelihood at every point is at
        least the mean of its members', and it varies less with the seed.
        ``n_components="auto"`` chooses ``k`` with single fits.
    random_state : int, RandomState instance or None, default=None
        Seeds the mixture's initialisation and the held-out split of
        ``"auto"``. An integer is passed to ``GaussianMixture`` as is.

    Attributes
    ----------
    mixture_ : sklearn.mixture.GaussianMixture
        The fitted mixture.
    n_components_ : int
        Number of components used.
    candidate_n_components_ : ndarray of int or None
        With ``"auto"``, the candidates tried; else ``None``.
    candidate_scores_ : ndarray of float or None
        With ``"auto"``, the held-out mean log-likelihood of each candidate.
    means_ : ndarray of shape (n_components_, n_features)
        Component means.
    precisions_cholesky_ : ndarray of shape (n_components_, n_features, n_features)
        Upper triangular ``P_m`` with ``P_m P_m^T = Sigma_m^{-1}``
        (``P_m = L_m^{-T}``): ``(x - mu_m) @ P_m`` holds the standardised
        residuals of the Gaussian conditionals.
    log_weights_ : ndarray of shape (n_components_,)
        Log mixing weights.
    n_iter_ : int
        EM iterations of the best initialisation of the final fit (the most
        of any member of an average).
    converged_ : bool
        Whether that fit (every member) converged.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import GaussianMixtureDestructor
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3.0, 1.0, (300, 2)), rng.normal(3.0, 0.5, (300, 2))])
    >>> layer = GaussianMixtureDestructor(n_components=2, random_state=0).fit(X)
    >>> bool(np.allclose(layer.score_samples(X), layer.mixture_.score_samples(X)))
    True
    >>> Z = layer.transform(X)
    >>> bool(np.allclose(layer.inverse_transform(Z), X))
    True
    >>> GaussianMixtureDestructor(random_state=0).fit(X).n_components_  # "auto"
    2
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"),
                         StrOptions({"auto"})],
        "covariance_type": [StrOptions({"full"})],
        "reg_covar": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_average": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        covariance_type="full",
        reg_covar=1e-6,
        max_iter=200,
        n_init=1,
        n_average=1,
        random_state=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.n_average = n_average
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------
    def _mixture(self, n_components, random_state):
        return GaussianMixture(
            n_components=n_components,
            covariance_type="full",
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            n_init=self.n_init,
            random_state=random_state,
        )

    def _fit(self, X):
        # An integer seed goes to GaussianMixture as is; otherwise one
        # RandomState (never NumPy's global one) drives the split and fits.
        if isinstance(self.random_state, numbers.Integral):
            seed = self.random_state
        else:
            seed = check_random_state(self.random_state)
        self.candidate_n_components_ = None
        self.candidate_scores_ = None
        # EM's products and triangular solves are small (d x d per
        # component): on two OpenBLAS threads the 10-D search of
        # benchmarks/bench_quality.py took 14.8 s, on one 3.2 s, with the same
        # numbers. As in the stacking loop (deep.single_threaded_blas).
        with threadpool_limits(limits=1, user_api="blas"):
            k = self.n_components
            if k == "auto":
                k = self._choose_n_components(X, seed)
            return self._set_mixture(self._fit_average(X, int(k), seed))

    def _fit_average(self, X, k, seed):
        """The equal-weight average of ``n_average`` mixtures of ``k`` components."""
        if self.n_average == 1:
            return self._mixture(k, seed).fit(X)
        # The first member is the single fit of this seed; a RandomState is
        # drawn on by each fit in turn.
        seeds = [seed] * self.n_average
        if isinstance(seed, numbers.Integral):
            seeds[1:] = check_random_state(seed).randint(0, 2**31 - 1, self.n_average - 1)
        members = [self._mixture(k, int(s) if isinstance(s, numbers.Integral) else s).fit(X)
                   for s in seeds]
        average = GaussianMixture(
            n_components=k * self.n_average, covariance_type="full",
            reg_covar=self.reg_covar, max_iter=self.max_iter, n_init=self.n_init,
        )
        for name in ("means_", "covariances_", "precisions_cholesky_", "precisions_"):
            setattr(average, name, np.concatenate([getattr(m, name) for m in members]))
        average.weights_ = np.concatenate([m.weights_ for m in members]) / self.n_average
        average.converged_ = all(m.converged_ for m in members)
        average.n_iter_ = max(m.n_iter_ for m in members)
        average.lower_bound_ = np.nan  # no EM bound belongs to the average
        average.n_features_in_ = X.shape[1]
        return average

    def _choose_n_components(self, X, seed):
        """The candidate with the best held-out mean log-likelihood."""
        n = X.shape[0]
        if n < _MIN_ROWS_AUTO:
            return 1
        n_val = max(1, int(round(_VALIDATION_FRACTION * n)))
        perm = check_random_state(seed).permutation(n)
        X_val, X_fit = X[perm[:n_val]], X[perm[n_val:]]
        candidates, scores = [], []
        k = 1
        # At least n_features + 1 fitting rows per component on average.
        while k <= AUTO_MAX_COMPONENTS and (k == 1 or k * (X.shape[1] + 1) <= X_fit.shape[0]):
            candidates.append(k)
            scores.append(self._mixture(k, seed).fit(X_fit).score(X_val))
            best = int(first_best(np.asarray(scores, dtype=np.float64)))
            if len(scores) - 1 - best >= AUTO_PATIENCE:
                break
            k *= 2
        self.candidate_n_components_ = np.asarray(candidates)
        self.candidate_scores_ = np.asarray(scores, dtype=np.float64)
        return candidates[int(first_best(self.candidate_scores_))]

    def _set_mixture(self, mixture):
        """Precompute the arrays of the conditionals from a fitted mixture."""
        covariances = self._covariances(mixture)
        d = covariances.shape[1]
        K = len(mixture.weights_)
        # One (1, d, d) factor when all components share a covariance (a
        # kernel density): every map below broadcasts it over the components.
        P = np.empty_like(covariances)
        for m in range(covariances.shape[0]):
            L = cholesky(covariances[m], lower=True)
            P[m] = solve_triangular(L, np.eye(d), lower=True).T
        self.mixture_ = mixture
        self.n_components_ = K
        self.n_iter_ = int(mixture.n_iter_)
        self.converged_ = bool(mixture.converged_)
        self.means_ = np.asarray(mixture.means_, dtype=np.float64)
        self.precisions_cholesky_ = P
        with np.errstate(divide="ignore"):
            self.log_weights_ = np.log(np.asarray(mixture.weights_, dtype=np.float64))
        self._n_features_out = d
        return self

    @staticmethod
    def _covariances(mixture):
        """Component covariances, ``(K, d, d)``, or ``(1, d, d)`` when tied."""
        covariances = np.asarray(mixture.covariances_, dtype=np.float64)
        return covariances[None] if mixture.covariance_type == "tied" else covariances

    def _n_parameters(self):
        # As GaussianMixture with full covariances: K - 1 free weights, K
        # means and K symmetric covariances.
        K, d = self.means_.shape
        return (K - 1) + K * d + K * d * (d + 1) // 2

    def _marginal_log_density(self, X, features, rest):
        # The marginal of a Gaussian mixture is the mixture of the components'
        # marginals, with the same weights. It is this layer's density only
        # when its latent is the standard normal, i.e. when it is the last
        # layer of a model.
        if rest is not None:
            raise NotImplementedError(
                "GaussianMixtureDestructor gives exact marginals only as the last layer "
                "of a model: later layers change the density it maps to N(0, I)."
            )
        cov = self._covariances(self.mixture_)[:, features][:, :, features]
        P = np.empty_like(cov)
        for m in range(cov.shape[0]):
            L = cholesky(cov[m], lower=True)
            P[m] = solve_triangular(L, np.eye(len(features)), lower=True).T
        return self._mixture_log_density(X, self.means_[:, features], P)

    def _log_density(self, X):
        # The density of the map is the mixture's (module docstring): its
        # components' log-densities, without the conditional CDFs.
        return self._mixture_log_density(X, self.means_, self.precisions_cholesky_)

    def _mixture_log_density(self, X, means, P):
        """``log sum_m pi_m N(x; mu_m, (P_m P_m^T)^-1)`` of rows, in chunks."""
        log_det_P = np.sum(np.log(np.einsum("mkk->mk", P)), axis=1)
        out = np.empty(X.shape[0])
        for rows in self._chunks(X.shape[0]):
            E = self._whitened(X[rows], means, P)
            log_n = -0.5 * np.sum(E * E, axis=2) + log_det_P - means.shape[1] * _HALF_LOG_2PI
            out[rows] = _logsumexp(log_n + self.log_weights_, axis=1)
        return out

    @staticmethod
    def _whitened(X, means, P):
        """``E[i, m] = (x_i - mu_m) @ P_m``, rows x components x features."""
        if P.shape[0] == 1:  # a shared factor: one product for all components
            return (X @ P[0])[:, None, :] - (means @ P[0])[None]
        return np.einsum("imj,mjk->imk", X[:, None, :] - means[None], P)

    # -- state -------------------------------------------------------------------
    # The fitted GaussianMixture is kept as plain data (its parameters and
    # fitted arrays), so a safe model file (destructors.persistence), which
    # holds only registered classes, can hold this layer too.
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: it may be self.__dict__
        mixture = state.pop("mixture_", None)
        if mixture is not None:
            params = mixture.get_params()
            if not isinstance(params["random_state"], numbers.Integral):
                params["random_state"] = None  # a generator is not part of the fit
            fitted = {k: v for k, v in vars(mixture).items() if k.endswith("_")}
            state["_mixture_state"] = {"params": params, "fitted": fitted}
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_mixture_state", None)
        super().__setstate__(state)
        if saved is not None:
            mixture = GaussianMixture(**saved["params"])
            for key, value in saved["fitted"].items():
                setattr(mixture, key, value)
            self.mixture_ = mixture

    # -- the map ------------------------------------------------------------------
    def _chunks(self, n):
        K, d = self.means_.shape
        rows = max(1, min(_MAX_CHUNK_ROWS, _CHUNK_ELEMENTS // (K * d)))
        return [slice(i, min(i + rows, n)) for i in range(0, max(n, 1), rows)]

    def _forward(self, X):
        Z = np.empty_like(X)
        log_det = np.empty(X.shape[0])
        for rows in self._chunks(X.shape[0]):
            Z[rows], log_det[rows] = self._forward_chunk(X[rows])
        return Z, log_det

    def _forward_chunk(self, X):
        mu, P, log_pi = self.means_, self.precisions_cholesky_, self.log_weights_
        log_p_diag = np.log(np.einsum("mkk->mk", P))  # -log s_mk, (K, d)
        # e[i, m, k] = ((x_i - mu_m) @ P_m)[k]: the standardised conditional
        # residual of coordinate k under component m.
        E = self._whitened(X, mu, P)
        log_n = -0.5 * E * E + log_p_diag[None] - _HALF_LOG_2PI
        # Log joint of x_<=k under each component (weights included), and
        # of x_<k: the unnormalised log responsibilities for coordinate k.
        upto = log_pi[None, :, None] + np.cumsum(log_n, axis=2)
        before = np.concatenate(
            [np.broadcast_to(log_pi[None, :, None], (X.shape[0], len(log_pi), 1)),
             upto[:, :, :-1]], axis=2,
        )
        lse_before = _logsumexp(before, axis=1)  # (n, d)
        log_w = before - lse_before[:, None, :]
        log_cond = _logsumexp(upto, axis=1) - lse_before  # log p(x_k | x_<k)
        log_cdf = _logsumexp(log_w + log_ndtr(E), axis=1)
        log_sf = _logsumexp(log_w + log_ndtr(-E), axis=1)
        Z = _z_from_tails(log_cdf, log_sf)
        return Z, np.sum(log_cond - _log_phi(Z), axis=1)

    def _inverse(self, Z):
        X = np.empty_like(Z)
        log_det = np.empty(Z.shape[0])
        for rows in self._chunks(Z.shape[0]):
            X[rows], log_det[rows] = self._inverse_chunk(Z[rows])
        return X, log_det

    def _inverse_chunk(self, Z):
        mu, P, log_pi = self.means_, self.precisions_cholesky_, self.log_weights_
        n, d = Z.shape
        K = len(log_pi)
        X = np.empty((n, d))
        # partial[i, m, k] = sum_{j < k} (x_ij - mu_mj) P_m[j, k], built up
        # as the coordinates are recovered in order.
        partial = np.zeros((n, K, d))
        before = np.broadcast_to(log_pi, (n, K)).copy()  # log pi_m p_m(x_<k)
        log_det = np.zeros(n)
        for k in range(d):
            p_kk = P[:, k, k]
            log_p_diag = np.log(p_kk)
            log_w = before - _logsumexp(before, axis=1)[:, None]
            x, z, log_p, log_n = self._solve(Z[:, k], log_w, partial[:, :, k], mu[:, k], p_kk,
                                             log_p_diag)
            X[:, k] = x
            log_det -= log_p - _log_phi(z)
            before = before + log_n
            if k + 1 < d:
                shift = x[:, None] - mu[None, :, k]  # (n, K)
                partial[:, :, k + 1:] += shift[:, :, None] * P[None, :, k, k + 1:]
        return X, log_det

    @staticmethod
    def _solve(target, log_w, partial, mu_k, p_kk, log_p_diag):
        """Solve ``z(x) = target`` row by row for one coordinate.

        ``z(x)`` is increasing; the root lies in ``[min_m q_m, max_m q_m]``
        with ``q_m = c_m + target s_m`` the components' quantiles (each
        component CDF is below ``Phi(target)`` at the smallest, above it at
        the largest). Newton steps on ``z(x)``, whose slope tends to a
        constant in the tails, are kept when they stay inside the current
        bracket; otherwise the bracket is bisected.
        """
        sd = 1.0 / p_kk
        centre = mu_k[None, :] - partial * sd[None, :]  # conditional means (n, K)
        q = centre + target[:, None] * sd[None, :]
        sd_min = sd.min()
        scale = np.abs(q).max(axis=1) + sd_min
        lo = q.min(axis=1) - 1e-9 * scale
        hi = q.max(axis=1) + 1e-9 * scale
        x = np.clip(np.sum(np.exp(log_w) * q, axis=1), lo, hi)

        def evaluate(rows, at):
            e = partial[rows] + (at[:, None] - mu_k[None, :]) * p_kk[None, :]
            return _conditional_1d(e, log_w[rows], log_p_diag[None, :])

        active = np.arange(len(target))
        for _ in range(_MAX_ROOT_ITER):
            if active.size == 0:
                break
            xa = x[active]
            z, log_p, _ = evaluate(active, xa)
            f = z - target[active]
            below, above = f < 0, f > 0
            lo_a = np.where(below, xa, lo[active])
            hi_a = np.where(above, xa, hi[active])
            lo[active], hi[active] = lo_a, hi_a
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                step = f / np.exp(log_p - _log_phi(z))
                new = xa - step
            newton = np.isfinite(new) & (new > lo_a) & (new < hi_a)
            new = np.where(newton, new, 0.5 * (lo_a + hi_a))
            tol = scale[active]
            # Newton converges quadratically: after a step of 1e-8 of the
            # narrowest conditional sd the error is at the rounding level.
            done = (
                (f == 0)
                | (newton & (np.abs(step) <= np.maximum(1e-8 * sd_min,
                                                        1e-13 * np.maximum(np.abs(xa), tol))))
                | (hi_a - lo_a <= 4 * _EPS * np.maximum(np.abs(xa), tol))
            )
            x[active] = np.where(f == 0, xa, new)
            active = active[~done]
        z, log_p, log_n = evaluate(slice(None), x)
        return x, z, log_p, log_n


# Query rows of the leave-one-out likelihood that chooses a kernel bandwidth.
_LOO_ROWS = 1000
# Golden-section steps refining log(bandwidth) in a bracket of width 4x:
# 0.618^10 of log(4) is about 1 % of the bandwidth.
_GOLDEN_STEPS = 10


def _loo_log_likelihood(X, queries, log_h):
    """Mean leave-one-out log-likelihood at ``queries`` of the kernel density of ``X``.

    ``X`` is in kernel units (the kernel is ``N(0, h^2 I)``); row ``i`` of
    ``X[queries]`` is scored by the other ``n - 1`` rows.
    """
    n, d = X.shape
    h2 = np.exp(2.0 * log_h)
    sq = np.einsum("ij,ij->i", X, X)
    total = 0.0
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, len(queries), step):
        q = queries[start:start + step]
        D = np.maximum(sq[q][:, None] + sq[None] - 2.0 * (X[q] @ X.T), 0.0)
        D[np.arange(len(q)), q] = np.inf  # leave the row itself out
        nearest = D.min(axis=1)
        # Shifted by each row's nearest neighbour, so the sum never underflows.
        kernel = np.exp((D - nearest[:, None]) * (-0.5 / h2))
        total += np.sum(np.log(np.sum(kernel, axis=1)) - 0.5 * nearest / h2)
    return total / len(queries) - np.log(n - 1) - d * log_h - d * _HALF_LOG_2PI


@register_layer("kernel-density", "layer")
class KernelDensityDestructor(GaussianMixtureDestructor):
    """The exact triangular map of a Gaussian kernel density estimate.

    A Gaussian kernel density on ``n`` rows is a Gaussian mixture with one
    component at each row, equal weights ``1 / n`` and one shared
    covariance, the kernel ``h^2 diag(s^2)`` (``s`` the features' standard
    deviations, so ``h`` is a bandwidth in standardized units). The layer
    is the Rosenblatt map of that mixture (see
    :class:`GaussianMixtureDestructor`): exact, invertible, and its
    :meth:`score_samples` is the kernel density itself, that of
    :class:`sklearn.neighbors.KernelDensity` with ``bandwidth=h`` on the
    standardized data, less ``sum(log s)``.

    A kernel density needs no fitting beyond its bandwidth, and is the
    model of choice for densities with sharp edges or flat parts (uniform
    cells, bounded supports), which a mixture of a few broad Gaussians
    rounds off. Its cost grows with the rows kept: mapping or scoring one
    row visits all ``n`` components.

    Parameters
    ----------
    bandwidth : float > 0 or "auto", default="auto"
        Kernel bandwidth in standardized units. ``"auto"`` maximizes the
        leave-one-out log-likelihood (each row scored by the density of the
        other rows, so no row is held back from the model) over at most
        1,000 seeded query rows: doublings from Silverman's rule of thumb
        while they gain, then a golden-section search in log bandwidth
        within the bracket of the best.
    random_state : int, RandomState instance or None, default=None
        Seeds the query rows of ``"auto"`` (used only with more than 1,000
        rows).

    Attributes
    ----------
    bandwidth_ : float
        Bandwidth used, in standardized units.
    scale_ : ndarray of shape (n_features,)
        Standard deviations of the features: the kernel's covariance is
        ``diag((bandwidth_ * scale_) ** 2)``.
    candidate_bandwidths_ : ndarray of float or None
        With ``"auto"``, the bandwidths tried; else ``None``.
    candidate_scores_ : ndarray of float or None
        With ``"auto"``, the leave-one-out mean log-likelihood of each.
    mixture_ : sklearn.mixture.GaussianMixture
        The kernel density as a fitted mixture with tied covariances.
    n_components_ : int
        Number of kernels: the number of rows fitted.
    means_ : ndarray of shape (n_components_, n_features)
        The kernel centres: the rows fitted.
    precisions_cholesky_ : ndarray of shape (1, n_features, n_features)
        The shared ``P`` with ``P P^T`` the kernel's precision.
    log_weights_ : ndarray of shape (n_components_,)
        ``-log(n_components_)`` each.
    n_iter_ : int
        0 (nothing is iterated).
    converged_ : bool
        True.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KernelDensity
    >>> from destructors import KernelDensityDestructor
    >>> X = np.random.default_rng(0).uniform(size=(400, 2)) * [1.0, 3.0]
    >>> layer = KernelDensityDestructor(bandwidth=0.1).fit(X)
    >>> s = X.std(axis=0)
    >>> kde = KernelDensity(bandwidth=0.1).fit(X / s)
    >>> bool(np.allclose(layer.score_samples(X), kde.score_samples(X / s) - np.log(s).sum()))
    True
    >>> bool(np.allclose(layer.inverse_transform(layer.transform(X)), X))
    True
    >>> auto = KernelDensityDestructor().fit(X)
    >>> bool(0.02 < auto.bandwidth_ < 0.5)
    True
    """

    _parameter_constraints: dict = {
        "bandwidth": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "random_state": ["random_state"],
    }

    def __init__(self, bandwidth="auto", *, random_state=None):
        self.bandwidth = bandwidth
        self.random_state = random_state

    def _fit(self, X):
        n, d = X.shape
        scale = X.std(axis=0)
        constant = np.flatnonzero(~(scale > 0))
        if constant.size:
            raise ValueError(
                f"KernelDensityDestructor: feature(s) {constant.tolist()} are constant; a "
                "kernel density in standardized units needs every feature to vary."
            )
        self.candidate_bandwidths_ = None
        self.candidate_scores_ = None
        h = self.bandwidth
        if h == "auto":
            if n < 2:
                raise ValueError("KernelDensityDestructor(bandwidth='auto') needs at least 2 "
                                 "rows: a row is scored by the density of the others.")
            h = self._choose_bandwidth(X / scale)
        h = float(h)
        # The kernel density as a fitted GaussianMixture with tied covariances:
        # its score_samples is the density, and a model file stores it as data.
        mixture = GaussianMixture(n_components=n, covariance_type="tied")
        mixture.weights_ = np.full(n, 1.0 / n)
        mixture.means_ = X.copy()
        mixture.covariances_ = np.diag((h * scale) ** 2)
        mixture.precisions_cholesky_ = np.diag(1.0 / (h * scale))
        mixture.precisions_ = np.diag(1.0 / (h * scale) ** 2)
        mixture.converged_, mixture.n_iter_, mixture.lower_bound_ = True, 0, np.nan
        mixture.n_features_in_ = d
        self.bandwidth_ = h
        self.scale_ = scale
        return self._set_mixture(mixture)

    def _choose_bandwidth(self, U):
        """The bandwidth of the best leave-one-out log-likelihood of standardized rows."""
        n, d = U.shape
        queries = np.arange(n)
        if n > _LOO_ROWS:
            queries = np.sort(check_random_state(self.random_state).choice(
                n, _LOO_ROWS, replace=False))
        tried = {}

        def score(log_h):
            if log_h not in tried:
                tried[log_h] = _loo_log_likelihood(U, queries, log_h)
            return tried[log_h]

        # Silverman's rule of thumb, then doublings or halvings while they gain.
        start = np.log((4.0 / (d + 2)) ** (1.0 / (d + 4)) * n ** (-1.0 / (d + 4)))
        step = np.log(2.0)
        best = start
        for direction in (-step, step):
            while score(best + direction) > score(best):
                best += direction
        # Golden-section search in the bracket of the best: the likelihood is
        # unimodal there in practice, and the search spends no evaluation twice.
        lo, hi = best - step, best + step
        ratio = (np.sqrt(5.0) - 1.0) / 2.0
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        for _ in range(_GOLDEN_STEPS):
            if score(a) >= score(b):
                hi, b = b, a
                a = hi - ratio * (hi - lo)
            else:
                lo, a = a, b
                b = lo + ratio * (hi - lo)
        logs = np.array(sorted(tried))
        scores = np.array([tried[v] for v in logs])
        self.candidate_bandwidths_ = np.exp(logs)
        self.candidate_scores_ = scores
        return float(np.exp(logs[int(first_best(scores))]))

    def _n_parameters(self):
        # Every kernel centre is a data row taken as a parameter, plus the
        # feature scales and the bandwidth: a kernel density is as large as
        # its data.
        K, d = self.means_.shape
        return K * d + d + 1
