"""A forked child scores after its parent ran the parallel kernels.

GNU OpenMP (Numba's "omp" threading layer where TBB is absent) terminates a
forked child that opens a parallel region after its parent did ("fork()
called from a process already using GNU OpenMP"); forked children therefore
run the serial kernels, and must get the parent's numbers.
"""

import multiprocessing
import os

import numpy as np
import pytest
from _helpers import skewed_data

from destructors import RBIG, MarginalGaussianizer, _kernels

pytestmark = [
    pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork"),
    pytest.mark.skipif(
        os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
        reason="no threading layer without the JIT",
    ),
]

_TIMEOUT = 120.0


def _score_in(model, X, conn):
    try:
        conn.send(("ok", model.score_samples(X), _kernels.use_parallel(X.size)))
    except BaseException as exc:  # report, do not hang the parent
        conn.send(("error", repr(exc), None))
    finally:
        conn.close()


def _score_in_forked_child(model, X):
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_score_in, args=(model, X, sender))
    child.start()
    sender.close()  # so a dead child reads as EOF here, not as a wait
    result = None
    try:
        if receiver.poll(_TIMEOUT):
            result = receiver.recv()
    except EOFError:  # the child died before sending
        pass
    finally:
        receiver.close()
        child.join(_TIMEOUT)
        if child.is_alive():
            child.terminate()
            child.join()
    assert result is not None, f"forked child gave no result (exit code {child.exitcode})"
    status, scores, parallel = result
    assert status == "ok", scores
    assert child.exitcode == 0
    return scores, parallel


def _parent_uses_parallel_layer(X, xp, fp, counts):
    """Run the parallel piecewise-linear kernel here, so the layer is live."""
    assert _kernels.use_parallel(X.size)
    slope = np.diff(fp, axis=1) / np.diff(xp, axis=1)
    _kernels.piecewise_linear(X, xp, fp, slope, np.log(slope), counts)
    import numba

    assert numba.threading_layer()  # raises if no parallel region ever ran


@pytest.mark.parametrize(
    "model",
    [MarginalGaussianizer(), RBIG(max_layers=3, random_state=0)],
    ids=["marginal", "rbig"],
)
def test_forked_child_scores_like_parent(model):
    X = skewed_data(4000, 3, seed=0)
    model.fit(X)
    big = skewed_data(20 * _kernels._PARALLEL_MIN_ELEMENTS // 3, 3, seed=1)
    assert big.size >= _kernels._PARALLEL_MIN_ELEMENTS
    expected = model.score_samples(big)
    xp = np.sort(X, axis=0).T.copy()[:, ::40]
    counts = np.full(xp.shape[0], xp.shape[1])
    _parent_uses_parallel_layer(big, xp, np.cumsum(np.ones_like(xp), axis=1), counts)

    scores, child_parallel = _score_in_forked_child(model, big)
    assert child_parallel is False
    np.testing.assert_array_equal(scores, expected)
    # The parent itself still runs in parallel, with the same numbers.
    assert _kernels.use_parallel(big.size)
    np.testing.assert_array_equal(model.score_samples(big), expected)
