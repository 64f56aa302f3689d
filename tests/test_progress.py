"""Progress of long fits: the callback, the status lines and the max_layers warning."""

import pickle
import warnings

import numpy as np
import pytest
from _helpers import skewed_data
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from destructors import RBIG, DeepDestructor, PCARotation, RandomRotation
from destructors.deep import ArraySource, FixedDepth, StoppingRule, stack_layers
from destructors.progress import FitProgress, LayerProgress


def _early_stopped_fit(**params):
    X = skewed_data(800, 3, seed=0)
    records = []
    model = RBIG(max_layers=60, n_iter_no_change=4, random_state=0, **params)
    model.fit(X, callback=records.append)
    return model, records


def test_callback_receives_every_layer_in_order_search_then_refit():
    model, records = _early_stopped_fit()
    assert all(isinstance(r, LayerProgress) for r in records)
    search = [r for r in records if r.phase == "search"]
    refit = [r for r in records if r.phase == "refit"]
    assert records == search + refit  # the search first, then the refit
    n_searched = len(model.validation_score_)
    assert [r.layer for r in search] == list(range(1, n_searched + 1))
    assert [r.layer for r in refit] == list(range(1, model.n_layers_ + 1))
    assert model.n_layers_ < n_searched  # early stopping stopped it, then refitted
    assert {r.max_layers for r in search} == {60}
    assert {r.max_layers for r in refit} == {model.n_layers_}
    assert [r.last for r in search] == [False] * (n_searched - 1) + [True]
    assert [r.last for r in refit] == [False] * (model.n_layers_ - 1) + [True]
    # The search records are the model's diagnostics, layer by layer.
    np.testing.assert_array_equal([r.validation_score for r in search], model.validation_score_)
    np.testing.assert_array_equal([r.train_score for r in search], model.train_score_)
    np.testing.assert_array_equal([r.tc_reduction for r in search], model.tc_reduction_)
    # The stopping rule as it went: the last search layer used up the patience,
    # and the best depth is the depth kept.
    assert search[-1].patience_left == 0 and search[-1].best_layer == model.n_layers_
    assert search[-1].best_score == pytest.approx(np.max(model.validation_score_))
    # The refit measures no scores; time only moves forward and the
    # estimate of what remains ends at zero.
    assert all(r.validation_score is None and r.best_layer is None for r in refit)
    elapsed = [r.elapsed for r in records]
    assert elapsed == sorted(elapsed) and elapsed[-1] <= model.fit_time_
    assert all(r.remaining >= 0 for r in records) and refit[-1].remaining == 0


def test_callback_without_early_stopping_has_only_the_search():
    X = skewed_data(500, 2, seed=1)
    records = []
    model = RBIG(max_layers=5, early_stopping=False, tol=None, random_state=0)
    model.fit(X, callback=records.append)
    assert [(r.phase, r.layer) for r in records] == [("search", k) for k in range(1, 6)]
    assert all(r.validation_score is None for r in records)
    # Without a stopping rule the fit runs to max_layers: no patience, and
    # the estimate counts every layer left.
    assert all(r.patience_left is None for r in records)
    assert all(r.remaining > 0 for r in records[:-1]) and records[-1].remaining == 0


def test_verbose_two_adds_the_sources_own_lines(capsys):
    X = skewed_data(300, 2, seed=7)
    RBIG(max_layers=2, early_stopping=False, tol=None, random_state=0, verbose=2).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["layer 1/2", "layer 1", "layer 2/2",
                                                      "layer 2"]
    assert "tc reduction" in lines[1]


def test_remaining_time_estimate_uses_the_mean_time_per_layer():
    # A clock that advances one second per reading: begin() and every report
    # read it once, so layer k is reported k seconds into the search.
    ticks = iter(range(1000))
    progress = FitProgress(refit=True, clock=lambda: float(next(ticks)))
    rng = np.random.default_rng(2)
    X, X_val = rng.normal(size=(300, 2)), rng.normal(size=(100, 2))
    records = []
    progress.callback = records.append
    rule = StoppingRule(True, 0.0, patience=3)
    stack_layers(lambda i: RandomRotation(random_state=i), ArraySource(X, X_val), rule, 10,
                 progress=progress)
    assert len(records) >= 4  # patience 3 after the first layer at least
    for r in records:
        per_layer = (r.elapsed - 1.0) / r.layer  # the search began at second 1
        assert per_layer == pytest.approx(1.0)
        left = 0 if r.last else min(r.patience_left, 10 - r.layer)
        assert r.remaining == pytest.approx(per_layer * (left + r.best_layer))


def test_verbose_lines_show_search_and_refit(capsys):
    _early_stopped_fit(verbose=1)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("layer 1/60: train ")
    assert "patience left" in lines[0] and "elapsed" in lines[0] and "s left" in lines[0]
    assert any(line.startswith("refit: ") for line in lines)
    assert lines[-1].startswith("refit layer ") and lines[-1].endswith("about 0.0 s left")
    assert err == ""


def test_verbose_zero_prints_nothing_even_with_a_callback(capsys):
    _, records = _early_stopped_fit(verbose=0)
    assert records
    assert capsys.readouterr() == ("", "")


def test_the_callback_belongs_to_the_call_only():
    X = skewed_data(300, 2, seed=3)
    model = DeepDestructor(PCARotation(whiten=True), max_layers=2, early_stopping=False,
                           tol=None)
    model.fit(X, callback=lambda record: None)
    assert "callback" not in model.get_params()
    assert not hasattr(model, "_progress_callback")
    pickle.dumps(model)
    clone(model).fit(X)  # no callback: silent

    def fail(record):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        model.fit(X, callback=fail)
    assert not hasattr(model, "_progress_callback")


def test_fixed_depth_rule_fits_exactly_that_many_layers():
    X = np.random.default_rng(4).normal(size=(200, 2))
    result = stack_layers(lambda i: RandomRotation(random_state=i), ArraySource(X),
                          FixedDepth(3), 10)
    assert len(result.layers) == 3 and result.n_keep == 3


def test_max_layers_warning_points_at_the_callers_fit():
    X = skewed_data(800, 3, seed=5)
    records = []
    with pytest.warns(ConvergenceWarning, match="max_layers=3") as caught:
        RBIG(max_layers=3, random_state=0).fit(X, callback=records.append)
    assert caught[0].filename == __file__
    search = [r for r in records if r.phase == "search"]
    # Still improving: the last layer is the best one.
    assert search[-1].layer == search[-1].best_layer == 3
    # A fit the rule stopped before max_layers does not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = RBIG(max_layers=200, n_iter_no_change=3, random_state=0).fit(X)
    assert len(model.validation_score_) < 200


def test_streamed_fit_reports_both_phases():
    da = pytest.importorskip("dask.array")
    X = skewed_data(1000, 2, seed=6)
    records = []
    model = RBIG(max_layers=30, n_iter_no_change=2, random_state=0)
    model.fit(da.from_array(X, chunks=250), callback=records.append)
    phases = [(r.phase, r.layer) for r in records]
    n_searched = len(model.validation_score_)
    assert phases == [("search", k) for k in range(1, n_searched + 1)] + [
        ("refit", k) for k in range(1, model.n_layers_ + 1)]
    # A streamed source scores a layer in the next pass, so the record of a
    # layer may not hold its scores yet; the total correlation is always known.
    assert all(r.tc_reduction is not None for r in records if r.phase == "search")


def test_tqdm_bar_shows_both_phases():
    pytest.importorskip("tqdm")
    import io

    from destructors.progress import TqdmProgress

    out = io.StringIO()
    bar = TqdmProgress(file=out)
    model = RBIG(max_layers=60, n_iter_no_change=4, random_state=0)
    model.fit(skewed_data(800, 3, seed=0), callback=bar)
    shown = out.getvalue().replace("\r", "\n")
    n_searched = len(model.validation_score_)
    assert f"search: {n_searched}/60 layers" in shown
    assert f"refit: {model.n_layers_}/{model.n_layers_} layers" in shown
    assert "patience=0" in shown and "left=about 0.0 s" in shown
    assert bar._bar is None  # both bars closed at their last layer
