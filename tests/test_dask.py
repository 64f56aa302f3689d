"""Dask: lazy blockwise application, lazy sampling, and fitting from statistics.

Every lazy result is compared with the in-memory result on the same data.
The distributed tests run on a two-process ``LocalCluster`` bound to the
loopback interface, started and closed by this module; the others use the
threaded scheduler.
"""

import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _helpers import skewed_data
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.exceptions import NotFittedError

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from destructors import (  # noqa: E402
    RBIG,
    CompositeDestructor,
    DeepDestructor,
    GreedyRotation,
    ICARotation,
    MarginalGaussianizer,
    PCARotation,
    RandomRotation,
)
from destructors._dask import _Stream, fit_layer  # noqa: E402
from destructors._kernels import _PARALLEL_MIN_ELEMENTS  # noqa: E402

# Held-out log-likelihood of a Dask fit vs the NumPy fit of the same rows, in
# nats per sample. The marginal CDFs come from 2**14-bin histograms instead
# of sorted samples, and the greedy choice and the tolerance rule see
# histogram-based KL estimates, so the two models are close but not equal.
LOGLIK_TOL = 0.02
# PCA rotations of nearly isotropic data (2-D moons after a marginal
# Gaussianization) are ill-conditioned: jittering the moons by 1e-4 moves the
# held-out score of an in-memory PCA-RBIG fit by 0.056 nats, so the Dask fit
# can only be held to that.
LOGLIK_TOL_PCA = 0.06


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on 127.0.0.1, no dashboard."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # start-up chatter (e.g. port in use)
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def moons():
    X, _ = make_moons(3000, noise=0.05, random_state=0)
    X_test, _ = make_moons(3000, noise=0.05, random_state=1)
    return X, X_test


@pytest.fixture(scope="module")
def fitted_models():
    X = skewed_data(3000, 3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return X, {
            "marginal": MarginalGaussianizer().fit(X),
            "pca-whiten": PCARotation(whiten=True).fit(X),
            "composite": CompositeDestructor([MarginalGaussianizer(), RandomRotation(
                random_state=0)]).fit(X),
            "rbig": RBIG(max_layers=8, early_stopping=False, random_state=0).fit(X),
        }


def _lazy(X, rows=700):
    return da.from_array(X, chunks=(rows, X.shape[1]))


def _assert_lazy_equals_eager(model, X, X_dask):
    Z = model.transform(X_dask)
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), model.transform(X), rtol=1e-12, atol=1e-12)
    Z_lazy, ld_lazy = model.transform_log_det(X_dask)
    Z_lazy, ld_lazy = dask.compute(Z_lazy, ld_lazy)
    Z_eager, ld_eager = model.transform_log_det(X)
    np.testing.assert_allclose(Z_lazy, Z_eager, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ld_lazy, ld_eager, rtol=1e-12, atol=1e-12)
    scores = model.score_samples(X_dask)
    assert isinstance(scores, da.Array) and scores.shape == (X.shape[0],)
    np.testing.assert_allclose(scores.compute(), model.score_samples(X), rtol=1e-12, atol=1e-12)
    mean = model.score(X_dask)
    assert isinstance(mean, da.Array)
    np.testing.assert_allclose(float(mean), model.score(X), rtol=1e-12)
    Z_eager = model.transform(X)
    back = model.inverse_transform(_lazy(Z_eager))
    assert isinstance(back, da.Array)
    np.testing.assert_allclose(
        back.compute(), model.inverse_transform(Z_eager), rtol=1e-12, atol=1e-12
    )


# -- packaging ---------------------------------------------------------------
def test_import_and_numpy_use_do_not_import_dask():
    code = (
        "import sys, numpy as np, destructors\n"
        "m = destructors.PCARotation().fit(np.eye(3))\n"
        "m.score(np.eye(3)); m.sample(2, random_state=0)\n"
        "assert not any(k.partition('.')[0] in ('dask', 'distributed') for k in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- applying a fitted model ---------------------------------------------------
@pytest.mark.parametrize("name", ["marginal", "pca-whiten", "composite", "rbig"])
def test_lazy_results_equal_in_memory_threaded(fitted_models, name):
    X, models = fitted_models
    with dask.config.set(scheduler="threads"):
        _assert_lazy_equals_eager(models[name], X, _lazy(X))


def test_lazy_results_equal_in_memory_distributed(fitted_models, client):
    X, models = fitted_models
    with client.as_current():
        for model in models.values():
            _assert_lazy_equals_eager(model, X, _lazy(X))


def test_lazy_input_is_rechunked_and_dtype_kept(fitted_models):
    X, models = fitted_models
    model = models["rbig"]
    X32 = X.astype(np.float32)
    Z = model.transform(da.from_array(X32, chunks=(500, 1)))  # column chunks too
    assert Z.dtype == np.float32 and Z.chunks[1] == (3,)
    np.testing.assert_array_equal(Z.compute(), model.transform(X32))
    ints = da.from_array(np.round(X * 10).astype(np.int64), chunks=500)
    np.testing.assert_allclose(
        model.score_samples(ints).compute(), model.score_samples(np.round(X * 10)), rtol=1e-12
    )


def test_lazy_results_do_not_follow_a_later_refit(fitted_models):
    X, _ = fitted_models
    model = PCARotation(whiten=True).fit(X)
    lazy = model.transform(_lazy(X))
    expected = model.transform(X)
    model.fit(X * 3.0)
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-12)


def test_lazy_input_is_validated(fitted_models):
    X, models = fitted_models
    model = models["rbig"]
    with pytest.raises(ValueError, match="2D"):
        model.transform(da.zeros(10))
    with pytest.raises(ValueError, match="features"):
        model.score_samples(da.zeros((10, 4)))
    with pytest.raises(ValueError, match="not numeric"):
        model.transform(da.from_array(np.array([["a", "b", "c"]])))
    bad = X.copy()
    bad[2500, 1] = np.nan
    lazy = model.score_samples(_lazy(bad))  # the graph builds; computing it fails
    with pytest.raises(ValueError, match="NaN or infinity"):
        lazy.compute()
    with pytest.raises(NotFittedError):
        RBIG().transform(_lazy(X))


def test_overflowing_lazy_output_raises(fitted_models):
    X, _ = fitted_models
    model = PCARotation(whiten=True).fit(X * 1e-3)  # a map that scales up
    huge = np.full((4, 3), 1e308)
    with pytest.raises(ValueError, match="non-finite"):
        model.transform(huge)
    with pytest.raises(ValueError, match="non-finite"):
        model.transform(da.from_array(huge, chunks=2)).compute()


# -- Numba kernels under several threads ---------------------------------------
def test_kernels_are_thread_safe_and_thread_count_independent(fitted_models):
    X, models = fitted_models
    model = models["rbig"]
    rng = np.random.default_rng(1)
    # Above the parallel threshold: the main thread runs the parallel kernel,
    # worker threads the serial one; both must give the same numbers.
    big = np.tile(X, (3, 1))
    assert big.size >= _PARALLEL_MIN_ELEMENTS
    inputs = [big[rng.permutation(big.shape[0])] for _ in range(12)]
    expected = [model.score_samples(x) for x in inputs]
    expected_inverse = [model.inverse_transform(model.transform(x)) for x in inputs]
    barrier = threading.Barrier(6)

    def work(i):
        if i < 6:
            barrier.wait()  # start the first six at once
        return model.score_samples(inputs[i]), model.inverse_transform(model.transform(inputs[i]))

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(work, i) for i in range(len(inputs))]
        # Meanwhile the main thread runs the parallel kernel.
        main = [model.score_samples(x) for x in inputs[:3]]
        results = [f.result() for f in futures]
    for score, e_score in zip(main, expected, strict=False):
        np.testing.assert_array_equal(score, e_score)
    for (score, back), e_score, e_back in zip(results, expected, expected_inverse, strict=True):
        np.testing.assert_array_equal(score, e_score)
        np.testing.assert_array_equal(back, e_back)


def test_threaded_scheduler_many_threads_match_single_threaded(fitted_models):
    X, models = fitted_models
    model = models["rbig"]
    big = np.tile(X, (4, 1))
    lazy = model.score_samples(da.from_array(big, chunks=(1000, 3)))
    single = lazy.compute(scheduler="sync")
    with dask.config.set(scheduler="threads", num_workers=8):
        many = lazy.compute()
    np.testing.assert_array_equal(many, single)
    np.testing.assert_array_equal(single, model.score_samples(big))


# -- sampling ------------------------------------------------------------------------
def test_lazy_sample_is_the_same_on_every_scheduler(fitted_models, client):
    _, models = fitted_models
    model = models["rbig"]
    lazy = model.sample(2500, random_state=7, chunks=600)
    assert isinstance(lazy, da.Array) and lazy.chunks == ((600,) * 4 + (100,), (3,))
    sync = lazy.compute(scheduler="sync")
    threads = lazy.compute(scheduler="threads", num_workers=3)
    with client.as_current():
        processes = model.sample(2500, random_state=7, chunks=600).compute()
    np.testing.assert_array_equal(sync, threads)
    np.testing.assert_array_equal(sync, processes)
    # A new call with the same seed gives the same draw; another seed does not.
    np.testing.assert_array_equal(
        model.sample(2500, random_state=7, chunks=600).compute(), sync
    )
    assert not np.allclose(model.sample(2500, random_state=8, chunks=600).compute(), sync)
    # Block i comes from the i-th spawned seed: the first blocks do not
    # depend on how many rows follow.
    np.testing.assert_array_equal(
        model.sample(1200, random_state=7, chunks=600).compute(), sync[:1200]
    )


def test_lazy_sample_follows_the_model(fitted_models):
    X, models = fitted_models
    model = models["rbig"]
    gen = np.random.default_rng(3)
    samples = model.sample(20000, random_state=gen, chunks=5000).compute()
    assert np.all(np.isfinite(samples))
    eager = model.sample(20000, random_state=3)
    np.testing.assert_allclose(samples.mean(axis=0), eager.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(samples.std(axis=0), eager.std(axis=0), rtol=0.05)


# -- fitting on a Dask array ------------------------------------------------------------
def test_fit_marginal_from_histograms_matches_sorted_sample():
    X = skewed_data(20000, 3, seed=1)
    X_test = skewed_data(5000, 3, seed=2)
    stream = _Stream(_lazy(X, 3000))
    lazy = fit_layer(MarginalGaussianizer(), stream)
    assert stream.n_passes == 2  # min/max, then histogram
    eager = MarginalGaussianizer().fit(X)
    np.testing.assert_array_equal(lazy.n_knots_, eager.n_knots_)
    # Knots within two bins (bins are range / 2**14 wide).
    bin_width = np.ptp(X, axis=0)[:, None] / 2**14
    assert np.all(np.abs(lazy.knots_x_ - eager.knots_x_) <= 2 * bin_width)
    np.testing.assert_allclose(lazy.knots_z_, eager.knots_z_, atol=2e-3)
    assert abs(lazy.score(X_test) - eager.score(X_test)) < 1e-3


def test_fit_marginal_refines_heavy_tails():
    # Cauchy tails stretch the range so far that the bulk falls in a few of
    # the 2**14 bins: refining passes split them.
    rng = np.random.default_rng(0)
    X = rng.standard_cauchy((50000, 2))
    X_test = rng.standard_cauchy((20000, 2))
    stream = _Stream(_lazy(X, 10000))
    lazy = fit_layer(MarginalGaussianizer(), stream)
    assert stream.n_passes >= 3
    eager = MarginalGaussianizer().fit(X)
    assert abs(lazy.score(X_test) - eager.score(X_test)) < 0.01


def test_fit_rotations_from_statistics():
    X = skewed_data(8000, 4, seed=3)
    X_dask = _lazy(X, 1500)
    pca = PCARotation(whiten=True).fit(X_dask)
    np.testing.assert_allclose(pca.matrix_, PCARotation(whiten=True).fit(X).matrix_, rtol=1e-9)
    random = RandomRotation(random_state=4).fit(X_dask)
    np.testing.assert_array_equal(random.matrix_, RandomRotation(random_state=4).fit(X).matrix_)
    Z = MarginalGaussianizer().fit(X).transform(X)
    greedy = GreedyRotation(random_state=5).fit(_lazy(Z, 1500))
    eager = GreedyRotation(random_state=5).fit(Z)
    assert greedy.chosen_ == eager.chosen_
    np.testing.assert_allclose(greedy.candidate_scores_, eager.candidate_scores_, atol=5e-3)
    np.testing.assert_allclose(greedy.matrix_, eager.matrix_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("rotation", ["greedy", "pca", "random"])
def test_rbig_fit_on_dask_matches_numpy_fit(moons, rotation):
    X, X_test = moons
    params = dict(rotation=rotation, max_layers=25, early_stopping=False, tol=None,
                  random_state=0)
    with dask.config.set(scheduler="threads"):
        lazy = RBIG(**params).fit(_lazy(X))
    eager = RBIG(**params).fit(X)
    assert lazy.n_layers_ == eager.n_layers_ == 25
    tol = LOGLIK_TOL_PCA if rotation == "pca" else LOGLIK_TOL
    assert abs(lazy.score(X_test) - eager.score(X_test)) < tol
    # The first layers see (nearly) the same data: their numbers agree closely.
    np.testing.assert_allclose(lazy.train_score_[:3], eager.train_score_[:3], atol=2e-3)
    np.testing.assert_allclose(lazy.tc_reduction_[:3], eager.tc_reduction_[:3], atol=5e-3)
    assert lazy.validation_score_ is None
    # The result is the ordinary in-memory model.
    assert isinstance(lazy.layers_[0], CompositeDestructor)
    assert lazy.score_samples(X_test).shape == (X_test.shape[0],)


def test_passes_per_layer_are_as_documented(moons):
    X, _ = moons
    model = RBIG(max_layers=4, early_stopping=False, tol=None, random_state=0)
    model.fit(_lazy(X))
    passes = [p for p, _ in model._fit_log]
    # First layer: min/max and histogram of the raw data, then moments and
    # candidate histograms; later layers reuse the winner's histogram. Each
    # layer ends with one pass that persists its output.
    assert passes[0] in (5, 6, 7) and passes[1:] == [3, 3, 3]


def test_deep_fits_apply_each_layer_a_bounded_number_of_times(moons, monkeypatch):
    # Persisting the rows after every layer makes a fit O(L) layer
    # applications: no pass replays the earlier layers. The fallback
    # (no persistence) gives the same model.
    import destructors._dask as backend

    X, X_test = moons
    applied = []
    original = backend._block_pass

    def counting(block, index, layers, *args):
        applied.append(len(layers))
        return original(block, index, layers, *args)

    monkeypatch.setattr(backend, "_block_pass", counting)
    model = RBIG(max_layers=8, early_stopping=False, tol=None, random_state=0)
    model.fit(_lazy(X))
    assert max(applied) <= 2  # at most the leaves of the layer being fitted
    monkeypatch.setattr(backend, "_PERSIST", False)
    applied.clear()
    replayed = RBIG(max_layers=8, early_stopping=False, tol=None, random_state=0)
    replayed.fit(_lazy(X))
    assert max(applied) >= 14  # the last layers replay all earlier ones
    np.testing.assert_array_equal(model.transform(X_test), replayed.transform(X_test))
    np.testing.assert_array_equal(model.train_score_, replayed.train_score_)


def test_rbig_fit_with_early_stopping_on_dask(moons):
    X, X_test = moons
    with dask.config.set(scheduler="threads"):
        lazy = RBIG(random_state=0, n_iter_no_change=5).fit(_lazy(X))
    eager = RBIG(random_state=0, n_iter_no_change=5).fit(X)
    n_fitted = lazy.validation_score_.size
    assert lazy.train_score_.size == lazy.tc_reduction_.size == n_fitted
    assert lazy.n_layers_ == int(np.argmax(lazy.validation_score_)) + 1
    # The in-memory rule, replayed on the recorded scores, stops at the same layer.
    best, stale, stop = -np.inf, 0, None
    for i, score in enumerate(lazy.validation_score_):
        stale = 0 if score > best + lazy.tol else stale + 1
        best = max(best, score)
        if stale >= 5:
            stop = i
            break
    assert stop == n_fitted - 1 < lazy.max_layers - 1
    # Different validation rows (a per-block mask): a looser tolerance.
    assert abs(lazy.score(X_test) - eager.score(X_test)) < 3 * LOGLIK_TOL


def test_fit_does_not_depend_on_chunking(moons):
    X, X_test = moons
    params = dict(max_layers=6, early_stopping=False, random_state=0)
    a = RBIG(**params).fit(_lazy(X, 500))
    b = RBIG(**params).fit(_lazy(X, 1300))
    np.testing.assert_allclose(a.score_samples(X_test), b.score_samples(X_test), atol=1e-8)


def test_fit_on_distributed_cluster_matches_threads(moons, client):
    X, X_test = moons
    params = dict(max_layers=6, early_stopping=True, refit=True, random_state=0)
    with dask.config.set(scheduler="threads"):
        threaded = RBIG(**params).fit(_lazy(X))
    with client.as_current():
        remote = RBIG(**params).fit(_lazy(X))
    assert remote.n_layers_ == threaded.n_layers_
    np.testing.assert_allclose(remote.validation_score_, threaded.validation_score_, atol=1e-10)
    np.testing.assert_allclose(
        remote.score_samples(X_test), threaded.score_samples(X_test), atol=1e-8
    )


def test_fit_on_dask_rejects_bad_input_and_unsupported_layers():
    X = skewed_data(200, 2, seed=0)
    bad = X.copy()
    bad[150, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        RBIG(max_layers=2).fit(_lazy(bad, 100))
    with pytest.raises(ValueError, match="minimum of 2"):
        MarginalGaussianizer().fit(da.zeros((1, 2)))
    with pytest.raises(ValueError, match="2D"):
        PCARotation().fit(da.zeros(5))
    with pytest.raises(NotImplementedError, match="ICARotation"):
        ICARotation().fit(_lazy(X))
    with pytest.raises(NotImplementedError, match="ICARotation"):
        DeepDestructor(CompositeDestructor([MarginalGaussianizer(), ICARotation()])).fit(
            _lazy(X)
        )
    with pytest.raises(ValueError, match="held out"):
        RBIG(validation_fraction=1e-6, random_state=0).fit(_lazy(X[:20], 10))


def test_fit_warns_on_constant_feature():
    X = skewed_data(500, 2, seed=0)
    X[:, 1] = 3.0
    with pytest.warns(UserWarning, match="constant"):
        model = MarginalGaussianizer().fit(_lazy(X, 100))
    np.testing.assert_allclose(model.transform(X)[:, 1], 0.0)


def test_dask_fit_refuses_duplicated_rows_as_the_numpy_fit_does():
    # The in-memory rule (at most 1 % of rows copying others) on chunked
    # data: 5 % copies are refused in both; 0.5 % pass in both.
    rng = np.random.default_rng(21)
    X = rng.normal(size=(2000, 3))
    many, few = X.copy(), X.copy()
    many[1900:] = X[:100]
    few[1990:] = X[:10]
    model = RBIG(rotation="greedy", max_layers=2, early_stopping=False, tol=None,
                 random_state=0)
    for data in (many, da.from_array(many, chunks=(300, 3))):
        with pytest.raises(ValueError, match="100 of the 2000 training rows are exact copies"):
            clone(model).fit(data)
    lazy = clone(model).fit(da.from_array(few, chunks=(300, 3)))
    eager = clone(model).fit(few)
    assert lazy.score(few) == pytest.approx(eager.score(few), abs=1e-3)


def test_dask_fit_refuses_dequantize_with_the_way_to_do_it():
    X = da.from_array(np.random.default_rng(22).normal(size=(500, 2)), chunks=(100, 2))
    with pytest.raises(ValueError, match="dequantize=True needs the data in memory"):
        RBIG(dequantize=True, max_layers=2).fit(X)


def test_dask_fit_refuses_refit_marginals():
    X = da.from_array(np.random.default_rng(23).normal(size=(500, 2)), chunks=(100, 2))
    with pytest.raises(ValueError, match='refit="marginals" is not available for Dask'):
        RBIG(refit="marginals", max_layers=2).fit(X)
