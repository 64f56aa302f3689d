"""Common tests: every registered layer through ``check_destructor``.

The layer types come from the registry, never from a list of class names.
The common test covers the layers registered when this module is
collected (the built-in ones) plus, always, the example layers of
``tests/example_layers.py`` (registered only inside their tests, see
:func:`example_layers.registered_examples`), so its parameters are the same
whatever order the suite runs in.

The rest of the module shows that a layer defined outside the library (the
examples) works everywhere a built-in one does, and that
``check_destructor`` catches each kind of broken layer.
"""

import inspect
import warnings

import numpy as np
import pytest
from _helpers import assert_round_trip, skewed_data
from example_layers import (
    EXAMPLES,
    ExampleHouseholderRotation,
    ExampleSinhArcsinh,
    registered_examples,
)
from sklearn.exceptions import ConvergenceWarning

from destructors import RBIG, CompositeDestructor, DeepDestructor, GaussianDestructor
from destructors._fused import AffineStep, FusedProgram
from destructors._stats import Moments
from destructors.base import BaseDestructor, fused_steps
from destructors.composite import forward_through
from destructors.registry import layer_names, registered_layers
from destructors.utils import CHECKS, check_destructor

try:
    import dask.array  # noqa: F401

    HAVE_DASK = True
except ImportError:
    HAVE_DASK = False

# -- building a small instance of a registered type, by kind ---------------------

# A model's constructor arguments without a default, by parameter name: a
# chain of the first registered marginal and rotation (the built-in defaults).
_REQUIRED_MODEL_ARGUMENTS = {
    "layers": lambda: [registered_layers("marginal")[0].cls(),
                       registered_layers("rotation")[0].cls()],
    "layer": lambda: CompositeDestructor(_REQUIRED_MODEL_ARGUMENTS["layers"]()),
}
_MAX_LAYERS = 3  # deep models stay small and fast


def _default_instance(cls):
    return cls()


def _small_model(cls):
    """Default construction, required arguments filled by name, a few layers."""
    required = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty:
            if name not in _REQUIRED_MODEL_ARGUMENTS:
                pytest.fail(
                    f"{cls.__name__} needs the argument {name!r}: say how to build one "
                    "in _REQUIRED_MODEL_ARGUMENTS of tests/test_common.py."
                )
            required[name] = _REQUIRED_MODEL_ARGUMENTS[name]()
    model = cls(**required)
    params = model.get_params(deep=False)
    if "max_layers" in params:
        model.set_params(max_layers=_MAX_LAYERS)
    if "candidates" in params:  # a model choice (AutoDestructor): two small candidates
        model.set_params(candidates=[GaussianDestructor(),
                                     RBIG(max_layers=_MAX_LAYERS)])
    return model


# How to build a checkable instance of each kind of registered layer.
BUILD_BY_KIND = {
    "marginal": _default_instance,
    "rotation": _default_instance,
    "layer": _default_instance,
    "model": _small_model,
}

_BUILTIN = [(e.name, e.kind, e.cls) for e in registered_layers()]
_EXAMPLE_NAMES = {name for name, _, _ in EXAMPLES}
COMMON_CASES = _BUILTIN + [e for e in EXAMPLES if e not in _BUILTIN]


def test_registry_has_every_kind_covered():
    assert {kind for _, kind, _ in COMMON_CASES} <= set(BUILD_BY_KIND)
    assert not _EXAMPLE_NAMES & {name for name, _, _ in _BUILTIN}, (
        "example layers leaked into the registry at collection time"
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    ("name", "kind", "cls"), COMMON_CASES, ids=[f"{k}-{n}" for n, k, _ in COMMON_CASES]
)
def test_registered_layer_passes_check_destructor(name, kind, cls):
    with registered_examples():
        report = check_destructor(BUILD_BY_KIND[kind](cls))
    assert set(report.passed) | set(report.skipped) == set(CHECKS)
    # Nothing is skipped but the optional capabilities a layer may lack.
    assert set(report.skipped) <= {"fused", "stream"}, report
    if not HAVE_DASK and "stream" in report.skipped:
        assert report.skipped["stream"] in ("Dask is not installed", "no _fit_stream capability")


# -- the example layers, through the library's machinery ---------------------------


def test_example_registration_is_scoped():
    before = registered_layers()
    assert not _EXAMPLE_NAMES & set(layer_names("rotation") + layer_names("marginal"))
    with registered_examples():
        assert "example-householder" in layer_names("rotation")
        assert "example-sinh-arcsinh" in layer_names("marginal")
        RBIG(rotation="example-householder")._validate_params()
    assert registered_layers() == before
    with pytest.raises(ValueError, match="example-householder"):
        RBIG(rotation="example-householder", max_layers=2).fit(skewed_data(100, 2, seed=0))


def test_rbig_takes_the_example_rotation_from_the_registry():
    X = skewed_data(1500, 3, seed=0)
    X_test = skewed_data(500, 3, seed=1)
    with registered_examples():
        model = RBIG(rotation="example-householder", max_layers=4, early_stopping=False,
                     damping=1.0,  # classic full steps: four layers go a long way
                     random_state=0).fit(X)
    # Fitted: it works with the registry back to its built-in state.
    assert all(isinstance(layer.layers_[1], ExampleHouseholderRotation)
               for layer in model.layers_)
    assert_round_trip(model, X_test, rtol=1e-9)
    # Better than the best single Gaussian (by about as much as classic RBIG).
    mean, cov = X.mean(axis=0), np.cov(X.T, bias=True)
    centred = X_test - mean
    gauss = -0.5 * np.mean(np.einsum("ij,ij->i", centred @ np.linalg.inv(cov), centred))
    gauss -= 0.5 * (3 * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1])
    assert model.score(X_test) > gauss + 0.1


def test_example_rotation_runs_in_the_fused_kernel():
    X = skewed_data(800, 3, seed=2)
    with registered_examples():
        model = RBIG(rotation="example-householder", max_layers=4, early_stopping=False,
                     damping=1.0,  # classic full steps: four layers go a long way
                     random_state=0).fit(X)
    steps = fused_steps(model)
    assert steps is not None
    assert sum(isinstance(s, AffineStep) for s in steps) == model.n_layers_
    Z, ld = FusedProgram(steps).forward(X)
    Z_ref, ld_ref = forward_through(model.layers_, X)
    np.testing.assert_array_equal(Z, Z_ref)
    np.testing.assert_allclose(ld, ld_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(model.transform(X), Z_ref)


def test_models_of_example_layers_pass_check_destructor():
    with registered_examples():
        rbig = check_destructor(RBIG(rotation="example-householder", max_layers=3,
                                     damping=1.0))
        chain = check_destructor(CompositeDestructor([ExampleSinhArcsinh(),
                                                      ExampleHouseholderRotation()]))
        deep = check_destructor(DeepDestructor(
            CompositeDestructor([ExampleSinhArcsinh(), ExampleHouseholderRotation()]),
            max_layers=3))
    assert "fused" in rbig.passed
    # Streamed from moments, like PCA.
    assert ("stream" in rbig.passed) == HAVE_DASK
    # A layer without a fused form keeps the chain off the fused path ...
    assert "fused" in chain.skipped and "fused" in deep.skipped
    # ... and one without a streamed fit keeps the chain off Dask.
    if HAVE_DASK:
        assert "do not all fit from statistics" in chain.skipped["stream"]


# -- check_destructor catches broken layers ----------------------------------------


class _Scale(BaseDestructor):
    """``z = 2 (x - mean)``; subclasses break one property each."""

    def _fit(self, X):
        self.mean_ = X.mean(axis=0)
        return self

    def _forward(self, X):
        return 2.0 * (X - self.mean_), np.full(len(X), X.shape[1] * np.log(2.0))

    def _inverse(self, Z):
        return Z / 2.0 + self.mean_, np.full(len(Z), -Z.shape[1] * np.log(2.0))


class _WrongLogDet(_Scale):
    def _forward(self, X):
        Z, ld = super()._forward(X)
        return Z, ld + 0.1


class _InexactInverse(_Scale):
    def _inverse(self, Z):
        X, ld = super()._inverse(Z)
        return X * (1.0 + 1e-7), ld


class _InverseLogDetSign(_Scale):
    def _inverse(self, Z):
        X, ld = super()._inverse(Z)
        return X, -ld


class _Unseeded(_Scale):
    def _fit(self, X):
        super()._fit(X)
        self.mean_ = self.mean_ + np.random.default_rng().normal(size=X.shape[1])
        return self


class _WrongFusedStep(_Scale):
    def _fused_steps(self):
        d = self.mean_.size
        return [AffineStep(2.0 * np.eye(d), 0.5 * np.eye(d), np.zeros(d), np.zeros(d),
                           d * np.log(2.0))]  # forgets the mean


class _StreamIgnoresTheData(ExampleHouseholderRotation):
    def _fit_stream(self, stream):
        n, mean, comoment, _ = stream.run(Moments())[0]
        self._fit_moments(mean + 5.0, comoment / n)
        stream.append(self)


@pytest.mark.parametrize(
    ("layer", "check", "skip"),
    [
        (_WrongLogDet(), "change_of_variables", ()),
        (_InexactInverse(), "round_trip", ()),
        (_InverseLogDetSign(), "inverse_log_det", ()),
        (_Unseeded(), "determinism", ()),
        (_WrongFusedStep(), "fused", ()),
        # A constant error in the log-det: the mass check catches it alone too.
        (_WrongLogDet(), "mass_1d", ("change_of_variables", "inverse_log_det")),
        pytest.param(_StreamIgnoresTheData(), "stream", (),
                     marks=pytest.mark.skipif(not HAVE_DASK, reason="needs Dask")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_check_destructor_names_the_broken_property(layer, check, skip):
    with pytest.raises(AssertionError, match=f"^{check} failed for {type(layer).__name__}"):
        check_destructor(layer, skip=skip)


def test_check_destructor_reports_skipped_checks():
    report = check_destructor(_Scale(), skip=("mass_1d",))
    assert report.skipped["mass_1d"] == "skipped by the caller"
    assert report.skipped["fused"].startswith("no fused description")
    assert report.skipped["stream"] == "no _fit_stream capability"
    assert "skipped mass_1d" in str(report)
    with pytest.raises(ValueError, match="Unknown checks"):
        check_destructor(_Scale(), skip=("mass",))


def test_check_destructor_takes_user_data():
    rng = np.random.default_rng(5)
    X = rng.standard_t(4, size=(300, 2)) @ [[1.0, 0.5], [0.0, 2.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        report = check_destructor(RBIG(rotation="pca", max_layers=2), X,
                                  X_1d=rng.lognormal(size=400), random_state=3)
    assert "mass_1d" in report.passed
    assert report.details["mass_1d"] == pytest.approx(1.0, abs=1e-3)
