"""The fused kernel against the layer-by-layer reference path.

CI also runs this file with ``NUMBA_DISABLE_JIT=1`` (small arrays).
"""

import pickle
import threading

import numba
import numpy as np
import pytest
from sklearn.datasets import make_moons

from destructors import (
    RBIG,
    CompositeDestructor,
    DeepDestructor,
    MarginalGaussianizer,
    PCARotation,
)
from destructors._fused import FusedProgram
from destructors.base import capability, fused_steps
from destructors.composite import forward_through, inverse_through

# Without the JIT (a CI run) the kernels are plain Python: keep arrays small.
_JIT = not numba.config.DISABLE_JIT


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    return np.tanh(rng.standard_t(3, size=(n, d))) @ rng.normal(size=(d, d))


@pytest.mark.parametrize("rotation", ["greedy", "pca", "random", "ica"])
def test_fused_path_equals_layer_by_layer(rotation):
    X = _data(800, 3, 0)
    model = RBIG(rotation=rotation, max_layers=4, early_stopping=False, random_state=0).fit(X)
    assert fused_steps(model) is not None
    # Training rows (some sit exactly on knots), fresh rows, and rows far
    # outside the training range.
    X_test = np.vstack([X, _data(300, 3, 1), 50.0 * _data(20, 3, 2)])
    Z, ld = model._forward(X_test)
    Z_ref, ld_ref = forward_through(model.layers_, X_test)
    # Each step does the same arithmetic alone and fused: outputs are equal
    # bit for bit; only the log-det sum is associated differently.
    np.testing.assert_array_equal(Z, Z_ref)
    np.testing.assert_allclose(ld, ld_ref, rtol=1e-12, atol=1e-12)
    X_back, ld_inv = model._inverse(Z)
    X_ref, ld_inv_ref = inverse_through(model.layers_, Z)
    np.testing.assert_array_equal(X_back, X_ref)
    np.testing.assert_allclose(ld_inv, ld_inv_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ld_inv, -ld, rtol=1e-10, atol=1e-10)


def test_training_rows_on_knots_score_the_same_both_ways():
    # Reproducer: 1,985 of 10,000 moons training rows sit on a knot of the
    # first marginal map; the two paths rounded the affine sums differently
    # and disagreed by up to 0.49 nats there.
    X, _ = make_moons(10_000, noise=0.05, random_state=0)
    model = RBIG(max_layers=15, early_stopping=False, random_state=0).fit(X)
    first = model.layers_[0].layers_[0]
    on_knot = np.isin(X[:, 0], first.knots_x_[0]) | np.isin(X[:, 1], first.knots_x_[1])
    assert on_knot.sum() > 100
    fused = model.score_samples(X)
    Z_ref, ld_ref = forward_through(model.layers_, X)
    from destructors.base import standard_normal_log_pdf

    layered = standard_normal_log_pdf(Z_ref) + ld_ref
    np.testing.assert_allclose(fused, layered, rtol=0, atol=1e-9)
    # train_score_ is the mean over the fitting rows of the same quantity.
    assert model.train_score_[-1] == pytest.approx(fused.mean(), abs=1e-9)


def test_fused_parallel_serial_and_threads_agree():
    model = RBIG(max_layers=3, early_stopping=False, random_state=0).fit(_data(500, 4, 0))
    program = FusedProgram(fused_steps(model))
    X = _data(6000, 4, 1)  # above the parallel threshold
    Z, ld = program.forward(X)
    results = {}

    def worker(i):  # non-main threads take the serial kernel
        results[i] = program.forward(X)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for Z_t, ld_t in results.values():
        np.testing.assert_array_equal(Z_t, Z)
        np.testing.assert_array_equal(ld_t, ld)
    # Chunking does not change a row's result either.
    Z_half, ld_half = program.forward(X[:3001])
    np.testing.assert_array_equal(Z_half, Z[:3001])
    np.testing.assert_array_equal(ld_half, ld[:3001])


class _ShiftedMarginal(MarginalGaussianizer):
    """Overrides the map without describing a fused form of its own."""

    def _forward(self, X):
        Z, log_det = super()._forward(X)
        return Z + 0.5, log_det

    def _inverse(self, Z):
        return super()._inverse(Z - 0.5)


def test_subclass_that_overrides_the_map_is_not_fused_with_its_parents_map():
    # Reproducer: such a subclass ran through the fused kernel with the
    # parent's map, so transform differed from composing its own layers_.
    X = _data(400, 2, 0)
    layer = CompositeDestructor([_ShiftedMarginal(), PCARotation()])
    model = DeepDestructor(layer, max_layers=4, early_stopping=False, random_state=0).fit(X)
    assert capability(model.layers_[0].layers_[0], "_fused_steps") is None
    assert fused_steps(model) is None
    Z_ref, ld_ref = forward_through(model.layers_, X)
    Z, ld = model.transform_log_det(X)
    np.testing.assert_array_equal(Z, Z_ref)
    np.testing.assert_allclose(ld, ld_ref, rtol=1e-12)
    # The rotations between the custom marginals are still fused as runs.
    np.testing.assert_allclose(model.inverse_transform(Z), X, rtol=1e-9, atol=1e-9)


def test_truncating_layers_is_honoured_and_no_cache_is_pickled():
    # Reproducer: a hidden fused copy kept scoring the old depth after
    # layers_ was truncated, and doubled the pickle.
    X = _data(2000, 2, 0)
    model = RBIG(max_layers=10, early_stopping=False, random_state=0).fit(X)
    full = model.score(X)
    size_before = len(pickle.dumps(model))
    model.layers_ = model.layers_[:3]
    Z_ref, ld_ref = forward_through(model.layers_, X)
    np.testing.assert_array_equal(model.transform(X), Z_ref)
    assert model.score(X) != pytest.approx(full, abs=1e-6)
    # The pickle holds the layers once: no fused copy beside them.
    size_layers = len(pickle.dumps(model.layers_))
    assert len(pickle.dumps(model)) < 1.2 * size_layers + 5000
    assert size_before > len(pickle.dumps(model))


def test_a_wide_first_layer_does_not_pad_the_others():
    # One knot per sample in the first layer and sqrt(n) in the others: the
    # fused program stores each step at its own width.
    X = _data(5000, 3, 0)
    wide = CompositeDestructor([MarginalGaussianizer(n_knots=5000, smoothing=0.0),
                                PCARotation()])
    narrow = CompositeDestructor([MarginalGaussianizer(), PCARotation()])
    model = CompositeDestructor([wide] + [narrow] * 20).fit(X)
    program = FusedProgram(fused_steps(model))
    stored = program._forward_args[10].size  # the flat knot abscissae
    widths = [m.knots_x_.shape[1] * 3 for block in model.layers_ for m in block.layers_[:1]]
    assert stored == sum(widths)
    assert stored < 2 * widths[0]


def _score_reference(model, X):
    from destructors.base import standard_normal_log_pdf

    Z, log_det = forward_through(model.layers_, X)
    return standard_normal_log_pdf(Z) + log_det


def test_score_only_path_equals_scoring_the_latent_rows():
    X = _data(3000 if _JIT else 500, 3, 0)
    model = RBIG(max_layers=6, early_stopping=False, random_state=0).fit(X)
    X_test = np.vstack([X, _data(500, 3, 1), 30.0 * _data(20, 3, 2)])
    program = FusedProgram(fused_steps(model))
    Z, log_det = program.forward(X_test)
    expected = _score_reference(model, X_test)
    np.testing.assert_allclose(program.log_density(X_test), expected, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(model.score_samples(X_test), expected, rtol=1e-12, atol=1e-10)
    # The training score is the same quantity, summed the layer-by-layer way.
    assert model.train_score_[-1] == pytest.approx(model.score(X), abs=1e-9)


def test_score_only_path_with_a_layer_that_is_not_fused():
    # The chain's last run is scored in place; the custom layers before it
    # run on their own, and their log-dets still count.
    X = _data(400, 2, 0)
    layer = CompositeDestructor([_ShiftedMarginal(), PCARotation()])
    model = DeepDestructor(layer, max_layers=3, early_stopping=False, random_state=0).fit(X)
    np.testing.assert_allclose(model.score_samples(X), _score_reference(model, X),
                               rtol=1e-12, atol=1e-10)
    assert model.train_score_[-1] == pytest.approx(model.score(X), abs=1e-9)


def test_results_do_not_depend_on_threads_or_chunking(monkeypatch):
    from destructors import _fused

    model = RBIG(max_layers=4, early_stopping=False, random_state=0).fit(_data(1000, 5, 0))
    program = FusedProgram(fused_steps(model))
    X = _data(9000 if _JIT else 600, 5, 1)  # with the JIT, above the parallel threshold
    Z, log_det = program.forward(X)
    score = program.log_density(X)
    n_threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        results = [(*program.forward(X), program.log_density(X))]
    finally:
        numba.set_num_threads(n_threads)
    for elements in (16 * 5, 999, 65536):  # rows per chunk: 16, 199, 13107
        monkeypatch.setattr(_fused, "_CHUNK_ELEMENTS", elements)
        results.append((*program.forward(X), program.log_density(X)))
    # Rows split unevenly between calls, and the serial kernel.
    n = X.shape[0]
    parts = [program.forward(X[a:b]) for a, b in [(0, 37), (37, n // 2), (n // 2, n)]]
    results.append((np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                    np.concatenate([program.log_density(X[a:b]) for a, b in
                                    [(0, 1), (1, n // 3), (n // 3, n)]])))
    for Z_t, ld_t, score_t in results:
        np.testing.assert_array_equal(Z_t, Z)
        np.testing.assert_array_equal(ld_t, log_det)
        np.testing.assert_array_equal(score_t, score)


@pytest.mark.skipif(not _JIT, reason="plain-Python kernels: slow, and their objects are traced")
def test_scoring_does_not_store_the_latent_array():
    import tracemalloc

    X = _data(2000, 10, 0)
    model = RBIG(max_layers=2, early_stopping=False, random_state=0).fit(X)
    X_big = _data(100_000, 10, 1)
    model.score_samples(X_big[:10])
    tracemalloc.start()
    model.score_samples(X_big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # The result (n floats, 0.1x of the input) and a finiteness mask; the
    # latent array alone would be 1x.
    assert peak < 0.2 * X_big.nbytes, peak / X_big.nbytes
