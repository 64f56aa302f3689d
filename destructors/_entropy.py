"""One-dimensional entropy estimates used for per-layer diagnostics."""

import numpy as np

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def marginal_entropy(X):
    """Histogram estimate of each column's differential entropy, in nats.

    Equal-width bins, ``ceil(sqrt(n))`` of them over the column's range, with
    the Miller-Madow correction ``(occupied bins - 1) / (2 n)`` for the
    downward bias of the plug-in estimate.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Samples, at least two rows.

    Returns
    -------
    entropy : ndarray of shape (n_features,)
        Estimated entropies. A constant column has entropy ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._entropy import marginal_entropy
    >>> X = np.random.default_rng(0).uniform(0, 2, size=(20000, 1))
    >>> bool(abs(marginal_entropy(X)[0] - np.log(2)) < 0.01)
    True
    """
    n, d = X.shape
    n_bins = int(np.ceil(np.sqrt(n)))
    H = np.empty(d)
    for j in range(d):
        lo, hi = X[:, j].min(), X[:, j].max()
        if hi <= lo:
            H[j] = -np.inf
            continue
        counts, _ = np.histogram(X[:, j], bins=n_bins, range=(lo, hi))
        width = (hi - lo) / n_bins
        p = counts[counts > 0] / n
        H[j] = -np.sum(p * np.log(p / width)) + (p.size - 1) / (2.0 * n)
    return H


def marginal_kl_to_normal(X):
    """Estimate ``KL(p_j || N(0, 1))`` for each column ``j``, in nats.

    ``KL = -H(x_j) + 0.5 log(2 pi) + 0.5 E[x_j^2]``: non-Gaussianity of the
    marginal plus its mismatch in mean and scale, the quantity a marginal
    Gaussianization removes. Clipped at zero.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Samples.

    Returns
    -------
    kl : ndarray of shape (n_features,)
        Non-negative estimates.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._entropy import marginal_kl_to_normal
    >>> X = np.random.default_rng(0).normal(size=(20000, 1)) * 2.0
    >>> bool(abs(marginal_kl_to_normal(X)[0] - (2.0 - 0.5 - np.log(2))) < 0.02)
    True
    """
    kl = -marginal_entropy(X) + _HALF_LOG_2PI + 0.5 * np.mean(X**2, axis=0)
    return np.maximum(kl, 0.0)
