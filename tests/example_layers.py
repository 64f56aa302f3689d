"""Two layers written only in the tests, as a user would write a new layer.

Neither touches a library file: each derives from ``BaseDestructor``,
implements the required ``_fit``/``_forward``/``_inverse`` and declares the
optional capabilities it can honour, and is registered by name.

- :class:`ExampleHouseholderRotation` (``"example-householder"``, a
  rotation): the Householder reflection that sends the leading principal
  axis of the centred data to the first coordinate axis. It is affine, so
  it declares ``_fused_steps`` (one ``AffineStep``) and applies that very
  step with ``FusedProgram``, and it fits from streamed moments
  (``_fit_stream``).
- :class:`ExampleSinhArcsinh` (``"example-sinh-arcsinh"``, a marginal):
  per feature ``z = sinh(delta * asinh((x - mu) / sigma) - eps)`` with
  ``eps``, ``delta`` fitted by maximum likelihood. Smooth and non-linear,
  with no fused or streamed form: it exercises the plain path.

Registration is scoped: importing this module registers nothing. The
registry is global and read at call time (``RBIG(rotation=...)``, the
command line, the common test), and exact lists of names are asserted
elsewhere (a doctest lists the built-in rotations), so a test that needs
the examples registered enters :func:`registered_examples`, which puts them
in the registry and restores it exactly on the way out.
"""

import contextlib

import numpy as np
from scipy.optimize import minimize

from destructors import registry
from destructors._fused import AffineStep, FusedProgram
from destructors._stats import Moments
from destructors.base import BaseDestructor
from destructors.registry import register_layer


class ExampleHouseholderRotation(BaseDestructor):
    """``z = H (x - mean)``: H reflects the leading principal axis onto e1.

    ``H = I - 2 v v^T / v^T v`` with ``v = u - e1``, ``u`` the leading
    eigenvector of the covariance signed so that ``u[0] <= 0`` (so ``v`` is
    never short). ``H`` is symmetric and orthogonal: its own inverse, with
    log|det| zero.
    """

    def _fit(self, X):
        mean = X.mean(axis=0)
        cov = np.cov(X - mean, rowvar=False, bias=True).reshape(X.shape[1], X.shape[1])
        return self._fit_moments(mean, cov)

    def _fit_moments(self, mean, cov):
        u = np.linalg.eigh(cov)[1][:, -1]
        if u[0] > 0:
            u = -u
        v = u.copy()
        v[0] -= 1.0
        self.shift_ = np.asarray(mean, dtype=np.float64)
        self.matrix_ = np.eye(u.size) - 2.0 * np.outer(v, v) / (v @ v)
        return self

    def _fit_stream(self, stream):
        n, mean, comoment, _ = stream.run(Moments())[0]
        self._fit_moments(mean, comoment / n)
        stream.append(self)

    def _fused_steps(self):
        zeros = np.zeros_like(self.shift_)
        return [AffineStep(self.matrix_, self.matrix_, self.shift_, zeros, 0.0)]

    # The layer applies its own fused step, so alone and inside a fused run
    # of layers it does the same arithmetic (bit for bit).
    def _program(self):
        return self._derived(
            "program", lambda: FusedProgram(self._fused_steps()), self.matrix_, self.shift_
        )

    def _forward(self, X):
        return self._program().forward(X)

    def _inverse(self, Z):
        return self._program().inverse(Z)


def _log_cosh(t):
    return np.logaddexp(t, -t) - np.log(2.0)


class ExampleSinhArcsinh(BaseDestructor):
    """Per feature ``z = sinh(delta * asinh((x - mu) / sigma) - eps)``.

    ``mu`` and ``sigma`` are the mean and standard deviation; ``eps`` (skew)
    and ``delta > 0`` (tail weight) maximise the likelihood of the data
    under the implied density.
    """

    def _fit(self, X):
        self.mu_ = X.mean(axis=0)
        sigma = X.std(axis=0)
        self.sigma_ = np.where(sigma > 0, sigma, 1.0)
        U = (X - self.mu_) / self.sigma_
        self.eps_, self.delta_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        for j in range(X.shape[1]):
            a = np.arcsinh(U[:, j])

            def nll(p, a=a):
                t = np.exp(p[1]) * a - p[0]
                z = np.sinh(t)
                return -np.mean(-0.5 * z * z + p[1] + _log_cosh(t))

            best = minimize(nll, np.zeros(2), method="Nelder-Mead",
                            bounds=[(-5.0, 5.0), (-3.0, 3.0)])
            self.eps_[j], self.delta_[j] = best.x[0], np.exp(best.x[1])
        return self

    def _forward(self, X):
        U = (X - self.mu_) / self.sigma_
        t = self.delta_ * np.arcsinh(U) - self.eps_
        log_det = np.log(self.delta_) + _log_cosh(t) - 0.5 * np.log1p(U * U) - np.log(self.sigma_)
        return np.sinh(t), log_det.sum(axis=1)

    def _inverse(self, Z):
        t = np.arcsinh(Z)
        U = np.sinh((t + self.eps_) / self.delta_)
        log_det = np.log(self.delta_) + _log_cosh(t) - 0.5 * np.log1p(U * U) - np.log(self.sigma_)
        return self.mu_ + self.sigma_ * U, -log_det.sum(axis=1)


# (name, kind, class) of every example layer.
EXAMPLES = (
    ("example-householder", "rotation", ExampleHouseholderRotation),
    ("example-sinh-arcsinh", "marginal", ExampleSinhArcsinh),
)


@contextlib.contextmanager
def registered_examples():
    """Register the example layers for the duration of a block, then restore the registry."""
    try:
        for name, kind, cls in EXAMPLES:
            register_layer(name, kind)(cls)
        yield EXAMPLES
    finally:
        for name, kind, _ in EXAMPLES:
            registry.unregister_layer(name, kind)
