"""Shared utilities for the test suite: data, finite differences, checks.

Nothing here knows how the library computes anything: every check compares
the library against an independent computation (finite differences, a
quadrature, a closed-form density).
"""

import contextlib

import numpy as np
from scipy.stats import multivariate_normal, norm


def standard_normal_log_pdf(Z):
    """log N(z; 0, I) of each row, from SciPy rather than the library."""
    return norm.logpdf(Z).sum(axis=1)


def skewed_data(n, d, seed):
    """Correlated, skewed, heavy-ish tailed data: a hard but smooth density.

    Each column mixes a gamma, a Student t and a linear term of the previous
    columns, so there are both non-Gaussian marginals and dependence.
    """
    rng = np.random.default_rng(seed)
    X = np.empty((n, d))
    X[:, 0] = rng.gamma(3.0, size=n)
    for j in range(1, d):
        if j % 2:
            X[:, j] = 0.8 * X[:, j - 1] + rng.normal(size=n)
        else:
            X[:, j] = rng.standard_t(5, size=n) - 0.5 * X[:, j - 1]
    return X


def far_points(X, seed, n_each=20):
    """Points inside the data range and at 10x and 1000x the data scale.

    Returns an array of ``3 * n_each`` rows: fresh points near the data,
    points scattered at about 10 times its scale and at about 1000 times.
    """
    rng = np.random.default_rng(seed)
    centre, spread = X.mean(axis=0), X.std(axis=0)
    scale = np.abs(X).max()
    inside = centre + spread * rng.normal(size=(n_each, X.shape[1]))
    directions = rng.normal(size=(2 * n_each, X.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = np.repeat([10.0 * scale, 1000.0 * scale], n_each)[:, None]
    return np.vstack([inside, directions * radii])


def assert_round_trip(model, X, rtol=1e-8):
    """``inverse_transform(transform(X)) == X`` row by row, relative to |x|.

    The error of each row is measured against that row's norm (with a floor
    of one data unit near the origin), so the check is a relative one both
    inside the data and at 1000x its scale.
    """
    X_back = model.inverse_transform(model.transform(X))
    err = np.linalg.norm(X_back - X, axis=1)
    size = np.maximum(np.linalg.norm(X, axis=1), 1.0)
    worst = int(np.argmax(err / size))
    assert np.all(err <= rtol * size), (
        f"round trip off by {err[worst]:.3g} at |x| = {size[worst]:.3g} (row {worst})"
    )


def fd_log_abs_det(transform, X, h):
    """log|det J| of ``transform`` at each row of ``X`` by central differences.

    ``transform`` maps ``(n, d)`` to ``(n, d)``. The step actually taken is
    ``(x + h) - (x - h)`` as rounded in floating point, not ``2 h``.
    """
    n, d = X.shape
    steps = np.eye(d) * h
    plus = X[:, None, :] + steps[None]
    minus = X[:, None, :] - steps[None]
    taken = np.einsum("ikk->ik", plus - minus)  # (n, d): step of coordinate k
    Y = transform(np.concatenate([plus, minus], axis=1).reshape(-1, d)).reshape(n, 2, d, d)
    # J[i, k, :] = d f(x_i) / d x_k: the transpose of the Jacobian, same det.
    J = (Y[:, 0] - Y[:, 1]) / taken[:, :, None]
    sign, log_abs = np.linalg.slogdet(J)
    assert np.all(sign != 0)
    return log_abs


def assert_change_of_variables(model, X, atol=1e-5, h=1e-6, min_kept=0.9):
    """``score_samples = log N(f(x)) + log|det J_f(x)|`` with J by finite differences.

    Piecewise-linear maps have kinks at their knots, where a central
    difference straddles two slopes. Such points are recognised because the
    difference quotient then changes with the step: only points where steps
    ``h`` and ``h / 4`` agree are compared, and at least ``min_kept`` of the
    points must qualify. Away from kinks the maps are affine, so the quotient
    is exact up to rounding and ``atol`` can be tight: a missing constant
    (such as a whitening log-determinant) is off by order one.
    """
    ld_h = fd_log_abs_det(model.transform, X, h)
    ld_h4 = fd_log_abs_det(model.transform, X, h / 4)
    smooth = np.abs(ld_h - ld_h4) < 1e-6
    assert smooth.mean() >= min_kept, f"only {smooth.mean():.0%} of points away from kinks"
    expected = standard_normal_log_pdf(model.transform(X)) + ld_h
    np.testing.assert_allclose(model.score_samples(X)[smooth], expected[smooth], rtol=0, atol=atol)


def trapezoid_1d(model, lo, hi, n_grid):
    """Trapezoid integral of ``exp(score_samples)`` over ``[lo, hi]``."""
    grid = np.linspace(lo, hi, n_grid)
    density = np.exp(model.score_samples(grid[:, None]))
    return np.trapezoid(density, grid)


def trapezoid_2d(model, x_range, y_range, n_grid):
    """Trapezoid integral of ``exp(score_samples)`` over a rectangle."""
    gx = np.linspace(*x_range, n_grid)
    gy = np.linspace(*y_range, n_grid)
    grid = np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(model.score_samples(grid)).reshape(n_grid, n_grid)
    return np.trapezoid(np.trapezoid(density, gy, axis=1), gx)


def gaussian_log_pdf(X, mean, cov):
    """Exact log-density of N(mean, cov) at each row of ``X``."""
    return multivariate_normal(mean, cov).logpdf(X)


@contextlib.contextmanager
def global_random_state_unchanged():
    """Fail if the block draws from, reseeds or replaces NumPy's global state.

    The only place the tests look at the legacy global state, which the
    library must leave alone.
    """
    before = np.random.get_state()  # noqa: NPY002
    yield
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and before[2:] == after[2:]
    assert np.array_equal(before[1], after[1]), "the global NumPy random state changed"
