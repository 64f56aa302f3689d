"""The fused whole-model kernel against the layer-by-layer reference path.

CI also runs this file with ``NUMBA_DISABLE_JIT=1`` (small arrays).
"""

import threading

import numpy as np
import pytest

from destructors import RBIG, CompositeDestructor, DeepDestructor, MarginalGaussianizer
from destructors._fused import FusedBlocks
from destructors.composite import forward_through, inverse_through


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    return np.tanh(rng.standard_t(3, size=(n, d))) @ rng.normal(size=(d, d))


@pytest.mark.parametrize("rotation", ["greedy", "pca", "random", "ica"])
def test_fused_path_equals_layer_by_layer(rotation):
    X = _data(800, 3, 0)
    model = RBIG(rotation=rotation, max_layers=4, early_stopping=False, random_state=0).fit(X)
    assert model._fused is not None
    # Points inside, and far outside, the training range.
    X_test = np.vstack([_data(300, 3, 1), 50.0 * _data(20, 3, 2)])
    Z, ld = model._forward(X_test)
    Z_ref, ld_ref = forward_through(model.layers_, X_test)
    np.testing.assert_allclose(Z, Z_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ld, ld_ref, rtol=1e-12, atol=1e-12)
    X_back, ld_inv = model._inverse(Z)
    X_ref, ld_inv_ref = inverse_through(model.layers_, Z)
    np.testing.assert_allclose(X_back, X_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ld_inv, ld_inv_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ld_inv, -ld, rtol=1e-10, atol=1e-10)


def test_fused_parallel_serial_and_threads_agree():
    model = RBIG(max_layers=3, early_stopping=False, random_state=0).fit(_data(500, 4, 0))
    X = _data(6000, 4, 1)  # above the parallel threshold
    Z, ld = model._fused.forward(X)
    results = {}

    def worker(i):  # non-main threads take the serial kernel
        results[i] = model._fused.forward(X)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for Z_t, ld_t in results.values():
        np.testing.assert_array_equal(Z_t, Z)
        np.testing.assert_array_equal(ld_t, ld)


def test_only_marginal_affine_stacks_are_fused():
    X = _data(300, 2, 0)
    layer = CompositeDestructor([MarginalGaussianizer(), MarginalGaussianizer()])
    model = DeepDestructor(layer, max_layers=2, early_stopping=False).fit(X)
    assert FusedBlocks.from_layers(model.layers_) is None
    assert model._fused is None
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, rtol=1e-9)
