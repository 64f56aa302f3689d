"""k-nearest-neighbour reference estimators for the information benchmark.

Written on scikit-learn's neighbour searches (``NearestNeighbors`` and
``KDTree``), used only as a point of comparison:

- :func:`knn_entropy`: Kozachenko-Leonenko differential entropy;
- :func:`ksg_total_correlation`: Kraskov-Stoegbauer-Grassberger estimate
  (algorithm 1, max-norm) of the multi-information between single
  features; with two blocks, :func:`ksg_mutual_information`;
- :func:`knn_kl_divergence`: Wang-Kulkarni-Verdu divergence estimate.

All return nats.
"""

import numpy as np
from scipy.special import digamma, gammaln
from sklearn.neighbors import KDTree, NearestNeighbors


def _kth_distance(X, k, metric):
    """Distance from each row to its k-th nearest other row."""
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(X)
    dist, _ = nn.kneighbors(X)
    return dist[:, k]


def _count_within(X, radius):
    """Rows strictly closer than ``radius`` (max-norm), excluding the row."""
    tree = KDTree(X, metric="chebyshev")
    # query_radius counts distances <= r: shrink r to make it strict.
    r = np.nextafter(radius, 0.0)
    return tree.query_radius(X, r, count_only=True) - 1


def knn_entropy(X, k=3):
    """Kozachenko-Leonenko entropy with Euclidean k-th neighbour distances.

    ``H = psi(n) - psi(k) + log V_D + D * mean(log eps_i)`` with ``V_D`` the
    volume of the unit ball in ``D`` dimensions.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Samples.
    k : int, default=3
        Neighbour order.

    Returns
    -------
    h : float
        Entropy estimate, nats.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    eps = _kth_distance(X, k, "euclidean")
    log_ball = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)
    return float(digamma(n) - digamma(k) + log_ball + d * np.mean(np.log(eps)))


def ksg_total_correlation(X, k=3, blocks=None):
    """KSG (algorithm 1) multi-information between feature blocks.

    With max-norm distances ``eps_i`` to the k-th neighbour in the joint
    space and ``c_{b,i}`` the rows strictly within ``eps_i`` in block ``b``,
    ``TC = psi(k) + (B - 1) psi(n) - mean_i sum_b psi(c_{b,i} + 1)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Samples.
    k : int, default=3
        Neighbour order.
    blocks : list of index arrays or None, default=None
        Feature groups; ``None`` means one block per feature.

    Returns
    -------
    tc : float
        Estimate, nats.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    if blocks is None:
        blocks = [[j] for j in range(d)]
    eps = _kth_distance(X, k, "chebyshev")
    total = digamma(k) + (len(blocks) - 1) * digamma(n)
    for b in blocks:
        counts = _count_within(X[:, b], eps)
        total -= np.mean(digamma(counts + 1))
    return float(total)


def ksg_mutual_information(X, Y, k=3):
    """KSG mutual information between two blocks (algorithm 1).

    Parameters
    ----------
    X, Y : ndarray of shape (n_samples, n_features_x / n_features_y)
        Paired samples.
    k : int, default=3
        Neighbour order.

    Returns
    -------
    mi : float
        Estimate, nats.
    """
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    dx = X.shape[1]
    blocks = [list(range(dx)), list(range(dx, dx + Y.shape[1]))]
    return ksg_total_correlation(np.hstack([X, Y]), k, blocks)


def knn_kl_divergence(X, Y, k=3):
    """Wang-Kulkarni-Verdu estimate of ``KL(P_X || P_Y)``.

    ``D/n * sum_i log(nu_i / rho_i) + log(m / (n - 1))``, with ``rho_i`` the
    distance from ``x_i`` to its k-th neighbour among the other ``x`` and
    ``nu_i`` to its k-th neighbour among the ``m`` rows of ``Y``.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        Samples of P_X.
    Y : ndarray of shape (m, n_features)
        Samples of P_Y.
    k : int, default=3
        Neighbour order.

    Returns
    -------
    kl : float
        Estimate, nats.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n, d = X.shape
    m = Y.shape[0]
    rho = _kth_distance(X, k, "euclidean")
    nu, _ = NearestNeighbors(n_neighbors=k).fit(Y).kneighbors(X)
    return float(d * np.mean(np.log(nu[:, k - 1] / rho)) + np.log(m / (n - 1.0)))
