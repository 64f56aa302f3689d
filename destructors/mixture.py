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

from ._compat import Interval, StrOptions
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
        EM iterations of the best initialisation of the final fit.
    converged_ : bool
        Whether that fit converged.
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
        random_state=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
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
        k = self.n_components
        if k == "auto":
            k = self._choose_n_components(X, seed)
        mixture = self._mixture(int(k), seed).fit(X)
        return self._set_mixture(mixture)

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
            best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
            if len(scores) - 1 - best >= AUTO_PATIENCE:
                break
            k *= 2
        self.candidate_n_components_ = np.asarray(candidates)
        self.candidate_scores_ = np.asarray(scores, dtype=np.float64)
        return candidates[int(np.nanargmax(self.candidate_scores_))]

    def _set_mixture(self, mixture):
        """Precompute the arrays of the conditionals from a fitted mixture."""
        covariances = np.asarray(mixture.covariances_, dtype=np.float64)
        K, d, _ = covariances.shape
        P = np.empty_like(covariances)
        for m in range(K):
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
        cov = self.mixture_.covariances_[:, features][:, :, features]
        log_n = np.empty((X.shape[0], self.n_components_))
        for m in range(self.n_components_):
            L = cholesky(cov[m], lower=True)
            E = solve_triangular(L, (X - self.means_[m, features]).T, lower=True)
            log_n[:, m] = (-0.5 * np.sum(E * E, axis=0) - np.sum(np.log(np.diag(L)))
                           - len(features) * _HALF_LOG_2PI)
        return _logsumexp(log_n + self.log_weights_, axis=1)

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
        E = np.einsum("imj,mjk->imk", X[:, None, :] - mu[None], P)
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
