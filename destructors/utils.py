"""Checks that any destructor, built in or a user's, keeps the layer contract.

:func:`check_destructor` fits a clone of a destructor on a small seeded data
set and verifies, against independent computations (finite differences, a
quadrature, the layer-by-layer composition), the properties every layer of
this library promises: an exact inverse, an exact log-determinant, a density
that integrates to one, a fused path equal to the plain one, a streamed fit
close to the in-memory fit, determinism and sampling.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from ._fused import FusedProgram
from .base import BaseDestructor, capability, fused_steps, standard_normal_log_pdf
from .composite import forward_through, inverse_through

CHECKS = (
    "round_trip",
    "change_of_variables",
    "inverse_log_det",
    "mass_1d",
    "fused",
    "stream",
    "determinism",
    "sampling",
)


@dataclass
class CheckReport:
    """What :func:`check_destructor` ran.

    Attributes
    ----------
    estimator : str
        ``repr`` of the destructor checked.
    passed : list of str
        Names of the checks that ran and passed, in order.
    skipped : dict of str to str
        Names of the checks that did not run, with the reason.
    details : dict of str to float
        Numbers measured on the way (e.g. the streamed-fit score gap).

    Examples
    --------
    >>> from destructors import PCARotation
    >>> from destructors.utils import check_destructor
    >>> report = check_destructor(PCARotation(), skip=["stream", "mass_1d"])
    >>> "round_trip" in report.passed, sorted(report.skipped)
    (True, ['mass_1d', 'stream'])
    """

    estimator: str
    passed: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def __str__(self):
        lines = [f"check_destructor({self.estimator}):"]
        lines += [f"  passed  {name}" for name in self.passed]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def _seeded_clone(destructor, random_state):
    """An unfitted clone with every ``random_state`` (nested ones too) set."""
    model = clone(destructor)
    seeds = {k: random_state for k in model.get_params(deep=True) if k.endswith("random_state")}
    return model.set_params(**seeds)


def _default_data(rng, n, d):
    """Smooth, skewed, dependent data: a gamma column, then non-linear mixes."""
    X = np.empty((n, d))
    X[:, 0] = rng.gamma(3.0, size=n)
    for j in range(1, d):
        X[:, j] = 0.6 * X[:, j - 1] + np.sinh(0.7 * rng.normal(size=n))
    return X


def _outside_rows(X, rng, n=12):
    """Rows with one or every coordinate 5% to 50% of the range outside the data."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    rows = X[rng.integers(0, X.shape[0], size=n)].copy()
    for i in range(n):
        cols = range(X.shape[1]) if i % 3 == 0 else [int(rng.integers(X.shape[1]))]
        for j in cols:
            gap = rng.uniform(0.05, 0.5) * span[j]
            rows[i, j] = lo[j] - gap if rng.random() < 0.5 else hi[j] + gap
    return rows


def _fd_log_det(transform, x, h):
    """log|det J| of ``transform`` at the row ``x`` by central differences of steps ``h``."""
    d = x.shape[0]
    plus, minus = x + np.diag(h), x - np.diag(h)
    taken = np.diag(plus - minus)  # the steps as rounded, not 2 h
    Y = transform(np.vstack([plus, minus]))
    J = (Y[:d] - Y[d:]) / taken[:, None]
    return np.linalg.slogdet(J)[1]


class _Checker:
    def __init__(self, destructor, report):
        self.name = repr(destructor)
        self.report = report

    def fail(self, check, message):
        raise AssertionError(f"{check} failed for {self.name}: {message}")

    def passed(self, check):
        self.report.passed.append(check)


def check_destructor(
    destructor,
    X=None,
    *,
    X_1d=None,
    random_state=0,
    skip=(),
    rtol=1e-9,
    fd_rtol=1e-5,
    mass_tol=1e-3,
    stream_tol=0.05,
):
    """Fit clones of a destructor and check the properties every layer promises.

    Any :class:`~destructors.base.BaseDestructor` can be run through it (the
    library's layers, composites, deep models, or a user's new layer). Each
    check raises an ``AssertionError`` naming the property that failed:

    ``round_trip``
        ``inverse_transform(transform(X)) == X`` to ``rtol`` times the data
        scale, on training rows, on fresh rows and on rows 5% to 50% of the
        range outside the training data.
    ``change_of_variables``
        The log-det of ``transform_log_det`` equals log|det| of a central
        finite-difference Jacobian of ``transform`` (steps of ``1e-6`` times
        each feature's spread) at a few randomly perturbed fresh points, to
        ``fd_rtol`` relative (absolute below one nat). A point where steps
        ``h`` and ``h / 2`` disagree straddles a kink (a knot) and is moved
        by a small random offset first. Also ``score_samples == log N(Z) +
        log_det`` on all rows.
    ``inverse_log_det``
        ``_inverse`` reports minus the forward log-det at ``Z = f(x)``
        (fresh and outside rows: training rows may sit on knots, where the
        slope is one-sided).
    ``mass_1d``
        Fitted on one feature, the density integrates to one within
        ``mass_tol`` (trapezoid rule on 200,001 points between the model's
        own quantiles ``inverse_transform(+-8)``).
    ``fused``
        Where :func:`~destructors.base.fused_steps` gives a description, the
        fused kernel equals ``_forward``/``_inverse`` bit for bit in the
        output and to ``1e-12`` in the log-det; for a model with ``layers_``
        also the layer-by-layer composition
        (:func:`~destructors.composite.forward_through`).
    ``stream``
        Where the destructor has a ``_fit_stream`` capability and Dask is
        installed, a fit on a chunked ``dask.array`` scores the fresh rows
        within ``stream_tol`` nats (mean log-likelihood) of the NumPy fit.
    ``determinism``
        Two fits with the same ``random_state`` transform identically.
    ``sampling``
        ``sample(n, random_state=0)`` is finite, of the right shape, and the
        same on every call.

    Parameters
    ----------
    destructor : BaseDestructor
        An unfitted destructor (a fitted one is cloned, so only its
        parameters matter). Every ``random_state`` parameter, nested ones
        included, is set to ``random_state``.
    X : array-like of shape (n_samples, n_features) or None, default=None
        Data; a seeded fifth of the rows is held out as fresh rows. Default:
        600 rows of a smooth, skewed, dependent 3-D density.
    X_1d : array-like of shape (n_samples,) or (n_samples, 1) or None
        Data for the 1-D mass check; default 500 gamma(2) draws.
    random_state : int, default=0
        Seeds the data, the held-out split, the perturbations and the fits.
    skip : iterable of str, default=()
        Names of checks not to run (reported as skipped).
    rtol : float, default=1e-9
        Round-trip tolerance, relative to the data scale.
    fd_rtol : float, default=1e-5
        Finite-difference log-det tolerance, relative.
    mass_tol : float, default=1e-3
        Tolerance on the 1-D mass.
    stream_tol : float, default=0.05
        Tolerance, in nats, between the streamed and the in-memory fit.

    Returns
    -------
    report : CheckReport
        The checks that passed and those skipped, with the reason.

    Raises
    ------
    AssertionError
        The first check that fails, named in the message.

    Examples
    --------
    >>> from destructors import PCARotation
    >>> from destructors.utils import check_destructor
    >>> report = check_destructor(PCARotation(whiten=True))
    >>> report.passed[:3]
    ['round_trip', 'change_of_variables', 'inverse_log_det']
    >>> "fused" in report.passed
    True

    A layer that forgets the log-determinant of its map is caught:

    >>> import numpy as np
    >>> from destructors.base import BaseDestructor
    >>> class Doubling(BaseDestructor):
    ...     def _fit(self, X):
    ...         return self
    ...     def _forward(self, X):
    ...         return 2.0 * X, np.zeros(len(X))  # should be d * log(2)
    ...     def _inverse(self, Z):
    ...         return Z / 2.0, np.zeros(len(Z))
    >>> check_destructor(Doubling())
    Traceback (most recent call last):
    ...
    AssertionError: change_of_variables failed for Doubling(): ...
    """
    if not isinstance(destructor, BaseDestructor):
        raise TypeError(
            f"check_destructor needs a BaseDestructor, got {type(destructor).__name__}."
        )
    skip = set(skip)
    unknown = skip - set(CHECKS)
    if unknown:
        raise ValueError(f"Unknown checks {sorted(unknown)}; the checks are {list(CHECKS)}.")
    report = CheckReport(repr(destructor))
    checker = _Checker(destructor, report)
    rng = np.random.default_rng(random_state)

    if X is None:
        X = _default_data(rng, 600, 3)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 10:
        raise ValueError(f"X must be 2-D with at least 10 rows, got shape {X.shape}.")
    perm = rng.permutation(X.shape[0])
    n_fresh = max(2, X.shape[0] // 5)
    X_fresh, X_train = X[perm[:n_fresh]], X[perm[n_fresh:]]
    X_out = _outside_rows(X_train, rng)
    X_all = np.vstack([X_train, X_fresh, X_out])

    model = _seeded_clone(destructor, random_state).fit(X_train)
    centre = X_train.mean(axis=0)
    span = np.ptp(X_train, axis=0)
    span = np.where(span > 0, span, 1.0)

    def run(check, *args):
        if check in skip:
            report.skipped[check] = "skipped by the caller"
            return
        why = _CHECK_FUNCTIONS[check](checker, model, *args)
        if why is None:
            checker.passed(check)
        else:
            report.skipped[check] = why

    run("round_trip", X_all, centre, span, rtol)
    run("change_of_variables", X_all, X_fresh, span, fd_rtol, rng)
    run("inverse_log_det", np.vstack([X_fresh, X_out]))
    run("mass_1d", destructor, X_1d, random_state, mass_tol, rng)
    run("fused", X_all)
    run("stream", destructor, X_train, X_fresh, random_state, stream_tol)
    run("determinism", destructor, X_train, X_all, random_state)
    run("sampling")
    return report


def _round_trip(c, model, X_all, centre, span, rtol):
    X_back = model.inverse_transform(model.transform(X_all))
    scale = np.maximum(span, np.abs(X_all - centre))
    err = np.abs(X_back - X_all) / scale
    if not np.all(err <= rtol):
        i, j = np.unravel_index(np.argmax(err), err.shape)
        c.fail("round_trip", (
            f"inverse_transform(transform(x)) differs from x by {err[i, j]:.3g} of the "
            f"data scale (tolerance {rtol:g}) at row {i}, feature {j} "
            f"(x = {float(X_all[i, j])!r}, back = {float(X_back[i, j])!r})."
        ))


def _change_of_variables(c, model, X_all, X_fresh, span, fd_rtol, rng, n_points=5, tries=10):
    Z, log_det = model.transform_log_det(X_all)
    expected = standard_normal_log_pdf(Z) + log_det
    scores = model.score_samples(X_all)
    if not np.allclose(scores, expected, rtol=1e-12, atol=1e-12):
        i = int(np.argmax(np.abs(scores - expected)))
        c.fail("change_of_variables", (
            f"score_samples is {float(scores[i])!r} at row {i}, but log N(Z) + log_det of "
            f"transform_log_det is {float(expected[i])!r}."
        ))
    spread = np.std(X_fresh, axis=0)
    spread = np.where(spread > 0, spread, span)
    h = 1e-6 * spread
    for k in range(min(n_points, X_fresh.shape[0])):
        x0 = X_fresh[k]
        for _ in range(tries):
            x = x0 + 1e-3 * spread * rng.standard_normal(x0.shape)
            fd = _fd_log_det(model.transform, x, h)
            if abs(fd - _fd_log_det(model.transform, x, h / 2)) < 1e-6 * max(1.0, abs(fd)):
                break  # h and h / 2 agree: no kink between the steps
        else:
            c.fail("change_of_variables", (
                f"finite differences of transform near row {x0.tolist()} change with the "
                f"step at {tries} nearby points: transform is not differentiable there."
            ))
        ld = float(model.transform_log_det(x[None])[1][0])
        if not abs(fd - ld) <= fd_rtol * max(1.0, abs(fd)):
            c.fail("change_of_variables", (
                f"transform_log_det gives log|det J| = {ld!r} at x = {x.tolist()}, but "
                f"central differences of transform give {fd!r} (tolerance {fd_rtol:g} "
                "relative)."
            ))


def _inverse_log_det(c, model, X):
    Z, ld = model._forward(X)
    _, ld_inv = model._inverse(Z)
    tol = 1e-9 * np.maximum(1.0, np.abs(ld))
    if not np.all(np.abs(ld_inv + ld) <= tol):
        i = int(np.argmax(np.abs(ld_inv + ld) / tol))
        c.fail("inverse_log_det", (
            f"_inverse reports log|det| {float(ld_inv[i])!r} at Z = f(x) for row {i}, but the "
            f"forward log|det| is {float(ld[i])!r}: they must be opposite."
        ))


def _mass_1d(c, model, destructor, X_1d, random_state, mass_tol, rng):
    if X_1d is None:
        X_1d = rng.gamma(2.0, size=500)
    X_1d = np.asarray(X_1d, dtype=np.float64).reshape(-1, 1)
    try:
        one = _seeded_clone(destructor, random_state).fit(X_1d)
    except Exception as exc:
        c.fail("mass_1d", f"fitting on one feature raised {type(exc).__name__}: {exc}")
    lo, hi = np.sort(one.inverse_transform(np.array([[-8.0], [8.0]])).ravel())
    grid = np.linspace(lo, hi, 200_001)
    mass = float(np.trapezoid(np.exp(one.score_samples(grid[:, None])), grid))
    c.report.details["mass_1d"] = mass
    if not abs(mass - 1.0) <= mass_tol:
        c.fail("mass_1d", (
            f"fitted on one feature, the density integrates to {mass:.6f} between "
            f"inverse_transform(-8) and inverse_transform(8), not 1 (tolerance {mass_tol:g})."
        ))


def _fused(c, model, X_all):
    steps = fused_steps(model)
    if steps is None:
        return "no fused description (no _fused_steps capability, or a part without one)"
    program = FusedProgram(steps)
    Xc = np.ascontiguousarray(X_all)
    Z_f, ld_f = program.forward(Xc)
    paths = [("_forward", model._forward(Xc))]
    layers = getattr(model, "layers_", None)
    if isinstance(layers, list) and all(isinstance(a, BaseDestructor) for a in layers):
        paths.append(("layer by layer (forward_through)", forward_through(layers, Xc)))
    for what, (Z, ld) in paths:
        if not np.array_equal(Z, Z_f):
            n_diff = int(np.sum(Z != Z_f))
            c.fail("fused", (
                f"FusedProgram(fused_steps(model)).forward differs from {what} in "
                f"{n_diff} values (max {np.max(np.abs(Z - Z_f)):.3g}); they must be "
                "bit-identical: describe exactly the map the layer applies, and apply "
                "it with FusedProgram so both paths do the same arithmetic."
            ))
        if not np.allclose(ld, ld_f, rtol=1e-12, atol=1e-12):
            c.fail("fused", (
                f"the fused log-det differs from that of {what} by up to "
                f"{np.max(np.abs(ld - ld_f)):.3g}."
            ))
    X_f, ild_f = program.inverse(Z_f)
    inverses = [("_inverse", model._inverse(Z_f))]
    if len(paths) > 1:
        inverses.append(("layer by layer (inverse_through)", inverse_through(layers, Z_f)))
    for what, (Xb, ild) in inverses:
        if not np.array_equal(Xb, X_f) or not np.allclose(ild, ild_f, rtol=1e-12, atol=1e-12):
            c.fail("fused", f"FusedProgram(...).inverse differs from {what}.")


def _stream(c, model, destructor, X_train, X_fresh, random_state, stream_tol):
    if capability(destructor, "_fit_stream") is None:
        return "no _fit_stream capability"
    try:
        import dask.array as da
    except ImportError:
        return "Dask is not installed"
    n, d = X_train.shape
    chunked = da.from_array(X_train, chunks=(math.ceil(n / 4), d))
    try:
        streamed = _seeded_clone(destructor, random_state).fit(chunked)
    except NotImplementedError as exc:
        return f"its parts do not all fit from statistics ({exc})"
    gap = abs(streamed.score(X_fresh) - model.score(X_fresh))
    c.report.details["stream_score_gap"] = float(gap)
    if not gap <= stream_tol:
        c.fail("stream", (
            f"the fit on a chunked Dask array scores held-out rows {gap:.4f} nats away from "
            f"the NumPy fit (tolerance {stream_tol:g})."
        ))


def _determinism(c, model, destructor, X_train, X_all, random_state):
    twin = _seeded_clone(destructor, random_state).fit(X_train)
    if not np.array_equal(twin.transform(X_all), model.transform(X_all)):
        c.fail("determinism", (
            f"two fits with random_state={random_state!r} transform differently: a random "
            "choice is not drawn from the estimator's random_state."
        ))


def _sampling(c, model):
    first = model.sample(50, random_state=0)
    if first.shape != (50, model.n_features_in_) or not np.all(np.isfinite(first)):
        c.fail("sampling", f"sample(50) gave shape {first.shape} or non-finite values.")
    if not np.array_equal(first, model.sample(50, random_state=0)):
        c.fail("sampling", "sample(50, random_state=0) differs between two calls.")


_CHECK_FUNCTIONS = {
    "round_trip": _round_trip,
    "change_of_variables": _change_of_variables,
    "inverse_log_det": _inverse_log_det,
    "mass_1d": _mass_1d,
    "fused": _fused,
    "stream": _stream,
    "determinism": _determinism,
    "sampling": _sampling,
}
