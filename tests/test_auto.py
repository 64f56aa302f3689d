"""AutoDestructor (held-out model choice), the shrunk Gaussian and a deep model's front."""

import warnings

import numpy as np
import pytest
from _helpers import (
    assert_change_of_variables,
    assert_round_trip,
    gaussian_log_pdf,
    global_random_state_unchanged,
    skewed_data,
)
from scipy.special import logsumexp
from sklearn.covariance import ledoit_wolf
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from destructors import (
    RBIG,
    AutoDestructor,
    GaussianDestructor,
    GaussianMixtureDestructor,
)
from destructors.auto import AUTO_FOLDS, MIN_ROWS_HOLDOUT, default_candidates
from destructors.persistence import load_model, save_model

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _cheap():
    """A Gaussian and a short RBIG: enough to test the choice, fast to fit."""
    return [("gaussian", GaussianDestructor()),
            ("rbig", RBIG(max_layers=15, n_iter_no_change=5))]


def _gaussian_data(n, d, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    mean = rng.normal(size=d)
    return mean, A @ A.T, lambda m: mean + rng.normal(size=(m, d)) @ A.T


def _clusters(n, seed):
    """Three tight, well-separated 2-D Gaussian clusters; returns X and log p."""
    rng = np.random.default_rng(seed)
    means = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    scale = 0.4
    labels = rng.integers(3, size=n)
    X = means[labels] + scale * rng.normal(size=(n, 2))
    log_n = np.stack([gaussian_log_pdf(X, m, scale**2 * np.eye(2)) for m in means], axis=1)
    return X, logsumexp(log_n, axis=1) - np.log(3.0)


# -- the choice ----------------------------------------------------------------------


def test_gaussian_data_choose_the_gaussian_and_score_near_the_truth():
    mean, cov, draw = _gaussian_data(400, 10, seed=0)
    X, X_test = draw(400), draw(4000)
    auto = AutoDestructor(_cheap(), random_state=0).fit(X)
    assert auto.best_candidate_ == "gaussian"
    scores = auto.candidate_scores_
    assert scores["gaussian"]["mean"] > scores["rbig"]["mean"]
    # A Gaussian fitted on 400 rows in 10-D is KL ~ d(d+3) / (4n) = 0.08 nats
    # from the truth; 0.15 nats is the stated margin.
    truth = gaussian_log_pdf(X_test, mean, cov).mean()
    assert auto.score(X_test) > truth - 0.15


def test_clustered_data_choose_the_mixture_front():
    X, _ = _clusters(1000, seed=1)
    X_test, log_p = _clusters(3000, seed=2)
    candidates = [
        ("gaussian", GaussianDestructor()),
        ("rbig", RBIG(max_layers=10, n_iter_no_change=3)),
        ("mixture", RBIG(front=GaussianMixtureDestructor(), first_damping=None,
                         max_layers=10, n_iter_no_change=3)),
    ]
    auto = AutoDestructor(candidates, random_state=0).fit(X)
    assert auto.n_splits_ == 1  # 1,000 rows: one held-out split
    assert auto.best_candidate_ == "mixture"
    scores = {k: v["mean"] for k, v in auto.candidate_scores_.items()}
    assert scores["mixture"] > max(scores["gaussian"], scores["rbig"])
    # The truth is a 3-component mixture: the chosen model is within 0.05 nats.
    assert log_p.mean() - auto.score(X_test) < 0.05


def test_density_is_the_refit_candidates_on_all_rows():
    X = skewed_data(300, 4, seed=3)
    auto = AutoDestructor([GaussianDestructor()], random_state=0).fit(X)
    best = auto.best_estimator_
    # Refitted on every row: the mean and Ledoit-Wolf correlation of all of X.
    np.testing.assert_allclose(best.mean_, X.mean(axis=0), rtol=1e-12)
    std = X.std(axis=0)
    corr, _ = ledoit_wolf((X - X.mean(axis=0)) / std, assume_centered=True)
    np.testing.assert_allclose(best.covariance_, corr * np.outer(std, std), rtol=1e-10)
    X_new = skewed_data(200, 4, seed=4)
    np.testing.assert_array_equal(auto.score_samples(X_new), best.score_samples(X_new))
    np.testing.assert_allclose(auto.score_samples(X_new),
                               gaussian_log_pdf(X_new, best.mean_, best.covariance_),
                               rtol=1e-10)


@pytest.mark.slow
def test_default_candidates_never_below_the_shrunk_gaussian_on_small_high_d_data():
    # 250 rows of non-Gaussian data in 20-D: the regime where flexible models overfit.
    X = skewed_data(250, 20, seed=5)
    X_test = skewed_data(3000, 20, seed=6)
    auto = AutoDestructor(random_state=0).fit(X)
    assert auto.n_splits_ == AUTO_FOLDS
    gauss = GaussianDestructor().fit(X).score_samples(X_test)
    diff = auto.score_samples(X_test) - gauss
    # Stated margin: not below the Gaussian by more than 0.5 nats (of ~40 nats
    # total log-density), the cross-validation noise of a 250-row choice.
    assert diff.mean() > -0.5, (auto.best_candidate_, auto.candidate_scores_)


@pytest.mark.slow
def test_default_candidates_on_small_data_beat_each_candidate_alone_or_tie():
    # The choice on 5 folds of 200 rows: the chosen one has the best score.
    X = skewed_data(200, 3, seed=7)
    auto = AutoDestructor(random_state=0).fit(X)
    means = {k: v["mean"] for k, v in auto.candidate_scores_.items()}
    assert set(means) == {name for name, _ in default_candidates()}
    assert means[auto.best_candidate_] == max(means.values())
    assert all(v["error"] is None and v["se"] > 0 and v["fit_time"] > 0
               for v in auto.candidate_scores_.values())


# -- the split rule ------------------------------------------------------------------


@pytest.mark.parametrize(("n", "splits"), [(MIN_ROWS_HOLDOUT - 1, AUTO_FOLDS),
                                           (MIN_ROWS_HOLDOUT, 1)])
def test_split_rule(n, splits):
    X = skewed_data(n, 2, seed=8)
    auto = AutoDestructor([GaussianDestructor()], random_state=0).fit(X)
    assert auto.n_splits_ == splits
    folds = AutoDestructor(cv=3)._splits(n, np.random.RandomState(0))
    held = np.concatenate([val for _, val in folds])
    assert np.array_equal(np.sort(held), np.arange(n))  # every row held out once
    assert all(np.intersect1d(fit, val).size == 0 for fit, val in folds)
    fit, val = AutoDestructor(cv="holdout")._splits(n, np.random.RandomState(0))[0]
    assert val.size == round(0.2 * n) and fit.size + val.size == n


def test_too_few_rows_fit_the_first_candidate_with_a_warning():
    X = skewed_data(8, 2, seed=9)
    with pytest.warns(UserWarning, match="too few"):
        auto = AutoDestructor(_cheap(), random_state=0).fit(X)
    assert auto.best_candidate_ == "gaussian" and auto.candidate_scores_ == {}


def test_duplicated_rows_follow_the_library_rule():
    rng = np.random.default_rng(10)
    X_grid = rng.integers(0, 40, size=(300, 2)).astype(float)  # copies on a grid
    with pytest.raises(ValueError, match="exact copies"):
        AutoDestructor(_cheap(), random_state=0).fit(X_grid)
    auto = AutoDestructor(_cheap(), dequantize=True, random_state=0).fit(X_grid)
    # Dequantized: a density of the grid spread over its unit cells.
    assert np.all(np.isfinite(auto.score_samples(X_grid + 0.5)))
    # A few copies (under the rule's 1 %) are allowed: the search sees each
    # distinct row once, so no fold refuses them.
    X = skewed_data(300, 2, seed=10)
    auto = AutoDestructor(_cheap(), random_state=0).fit(np.vstack([X, X[:2]]))
    assert all(v["error"] is None for v in auto.candidate_scores_.values())


# -- a full destructor -------------------------------------------------------------


def test_round_trip_change_of_variables_and_sampling():
    X = skewed_data(400, 3, seed=11)
    auto = AutoDestructor(_cheap(), random_state=0).fit(X)
    X_new = skewed_data(100, 3, seed=12)
    assert_round_trip(auto, X_new, rtol=1e-9)
    assert_change_of_variables(auto, X_new)
    with global_random_state_unchanged():
        S = auto.sample(500, random_state=0)
    np.testing.assert_array_equal(S, auto.sample(500, random_state=0))
    np.testing.assert_allclose(auto.inverse_transform(auto.transform(S)), S, atol=1e-8)
    assert auto.score(X_new) == pytest.approx(auto.best_estimator_.score(X_new), rel=1e-12)


def test_deterministic_and_random_state_reaches_the_candidates():
    X = skewed_data(300, 3, seed=13)
    with global_random_state_unchanged():
        a = AutoDestructor(_cheap(), random_state=4).fit(X)
    b = AutoDestructor(_cheap(), random_state=4).fit(X)
    assert a.best_candidate_ == b.best_candidate_
    for name in a.candidate_scores_:
        assert a.candidate_scores_[name]["mean"] == b.candidate_scores_[name]["mean"]
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    rbig = AutoDestructor([RBIG(max_layers=5)], random_state=4).fit(X).best_estimator_
    assert isinstance(rbig.random_state, int)


def test_a_failing_candidate_is_recorded_and_skipped():
    X = skewed_data(200, 3, seed=14)
    X = np.column_stack([X, X[:, 0] + X[:, 1]])  # rank 3 in 4-D
    auto = AutoDestructor([GaussianDestructor(covariance="empirical"), GaussianDestructor()],
                          random_state=0).fit(X)
    failed = auto.candidate_scores_["0:GaussianDestructor"]
    assert np.isnan(failed["mean"]) and "full-rank" in failed["error"]
    assert auto.best_candidate_ == "1:GaussianDestructor"
    with pytest.raises(ValueError, match="every candidate failed.*full-rank"):
        AutoDestructor([GaussianDestructor(covariance="empirical")], random_state=0).fit(X)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"candidates": [StandardScaler()]}, "not a destructor"),
        ({"candidates": [("a", GaussianDestructor()), ("a", RBIG())]}, "unique"),
        ({"candidates": []}, "at least one candidate"),
        ({"cv": 1}, "cv"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        AutoDestructor(**params).fit(skewed_data(50, 2, seed=0))


def test_bad_input_and_input_unchanged():
    with pytest.raises(ValueError, match="NaN"):
        AutoDestructor(_cheap()).fit(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.0]]))
    X = skewed_data(100, 2, seed=15)
    before = X.copy()
    auto = AutoDestructor(_cheap(), random_state=0).fit(X)
    np.testing.assert_array_equal(X, before)
    with pytest.raises(ValueError, match="features"):
        auto.transform(np.zeros((3, 3)))


def test_default_candidates_use_rbig_defaults_and_differ():
    candidates = dict(default_candidates())
    assert list(candidates) == ["gaussian", "mixture", "rbig", "rbig-damped",
                                "mixture-rbig", "rbig-greedy", "kde"]
    assert candidates["rbig"].get_params()["rotation"] == "learned"
    assert candidates["rbig-greedy"].get_params()["rotation"] == "greedy"
    assert candidates["kde"].get_params()["bandwidth"] == "auto"
    params = [c.get_params() for c in candidates.values() if hasattr(c, "front")]
    # No two RBIG candidates are the same model.
    assert len({repr(sorted(p.items(), key=str)) for p in params}) == len(params)


# -- persistence and scikit-learn ----------------------------------------------------


def test_safe_model_file_round_trip(tmp_path):
    X = skewed_data(300, 3, seed=16)
    auto = AutoDestructor(_cheap(), random_state=0).fit(X)
    path = tmp_path / "auto.destructor"
    save_model(path, auto)
    loaded = load_model(path).model
    assert type(loaded) is AutoDestructor
    assert loaded.best_candidate_ == auto.best_candidate_
    assert loaded.candidate_scores_ == auto.candidate_scores_
    np.testing.assert_array_equal(loaded.score_samples(X), auto.score_samples(X))
    np.testing.assert_array_equal(loaded.sample(5, random_state=1), auto.sample(5, random_state=1))


def test_safe_model_file_holds_the_mixture_front(tmp_path):
    X, _ = _clusters(600, seed=17)
    model = RBIG(front=GaussianMixtureDestructor(3), first_damping=None, max_layers=5,
                 random_state=0).fit(X)
    path = tmp_path / "front.destructor"
    save_model(path, model)
    np.testing.assert_array_equal(load_model(path).model.score_samples(X), model.score_samples(X))


@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize_with_checks([AutoDestructor([GaussianDestructor(), RBIG(max_layers=3)])])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- a deep model's front ----------------------------------------------------------------


def test_front_comes_first_and_refinement_is_kept_only_when_held_out_rows_gain():
    X, _ = _clusters(1200, seed=18)
    front = GaussianMixtureDestructor(n_components=3)
    model = RBIG(front=front, first_damping=None, max_layers=20, n_iter_no_change=5,
                 random_state=0).fit(X)
    assert isinstance(model.layers_[0], GaussianMixtureDestructor)
    assert model.layers_[0].random_state is not None  # seeded like every layer
    # The depth is the best held-out prefix, the front alone included.
    best = int(np.argmax(model.validation_score_)) + 1
    assert model.n_layers_ == best
    assert_round_trip(model, X[:200], rtol=1e-9)
    # The front alone is the mixture's density; refinement adds exact layers.
    front_only = RBIG(front=front, max_layers=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        front_only.fit(X)
    mixture = front_only.layers_[0].mixture_
    np.testing.assert_allclose(front_only.score_samples(X), mixture.score_samples(X),
                               rtol=1e-9, atol=1e-9)


# -- the shrunk Gaussian -------------------------------------------------------------------


def test_shrunk_gaussian_is_exact_and_does_not_depend_on_units():
    X = skewed_data(60, 8, seed=19)
    g = GaussianDestructor().fit(X)
    np.testing.assert_allclose(g.score_samples(X), gaussian_log_pdf(X, g.mean_, g.covariance_),
                               rtol=1e-10)
    assert_round_trip(g, X, rtol=1e-10)
    # Rescaling a feature by c shifts every log-density by -log c and nothing else.
    scale = np.array([1e3, 1.0, 1e-2, 1.0, 1.0, 5.0, 1.0, 1.0])
    g_scaled = GaussianDestructor().fit(X * scale)
    np.testing.assert_allclose(g_scaled.score_samples(X * scale),
                               g.score_samples(X) - np.log(scale).sum(), rtol=1e-10)
    assert g_scaled.shrinkage_ == pytest.approx(g.shrinkage_, rel=1e-10)
    # Held out, shrinkage beats the sample covariance on 40 rows in 20-D
    # (whose KL to the truth is about d(d+3) / (4n) = 2.9 nats).
    _, _, draw = _gaussian_data(40, 20, seed=20)
    X, X_test = draw(40), draw(3000)
    shrunk = GaussianDestructor().fit(X).score(X_test)
    assert shrunk > GaussianDestructor(covariance="empirical").fit(X).score(X_test) + 1.0


def test_shrunk_gaussian_refuses_a_constant_feature():
    X = np.column_stack([skewed_data(50, 2, seed=21), np.ones(50)])
    with pytest.raises(ValueError, match="constant"):
        GaussianDestructor().fit(X)


def test_flat_density_with_sharp_edges_chooses_the_kernel_density_refit_on_all_rows():
    from destructors import GaussianMixtureDestructor, KernelDensityDestructor

    rng = np.random.default_rng(30)
    X = rng.uniform(size=(400, 2)) * [2.0, 0.5]
    auto = AutoDestructor([("mixture", GaussianMixtureDestructor(n_components=8)),
                           ("kde", KernelDensityDestructor())], random_state=0).fit(X)
    scores = auto.candidate_scores_
    assert auto.best_candidate_ == "kde"
    assert scores["kde"]["mean"] > scores["mixture"]["mean"]
    # Refitted: a kernel at every row, not only at those of a fold.
    assert auto.best_estimator_.n_components_ == 400
    X_test = rng.uniform(size=(2000, 2)) * [2.0, 0.5]
    assert np.log(1.0) - auto.score(X_test) < 0.15  # the truth is log(1 / (2 * 0.5)) = 0


def test_choice_is_the_earliest_within_one_paired_standard_error():
    rng = np.random.default_rng(0)
    base = rng.normal(size=400)
    noise = rng.normal(size=400)
    candidates = [("simple", None), ("rich", None)]

    def scores(held_out):
        return {name: {"mean": float(v.mean()), "se": 0.0, "fit_time": 0.0, "error": None}
                for name, v in held_out.items()}

    # A lead of 0.01 with a paired standard error of about 0.05: noise.
    held_out = {"simple": base, "rich": base + 0.01 + noise}
    held_out["rich"] += 0.01 - (held_out["rich"] - base).mean()
    assert AutoDestructor._choose(candidates, scores(held_out), held_out) == "simple"
    # The same lead on every row (standard error 0): a real gain.
    held_out = {"simple": base, "rich": base + 0.01}
    assert AutoDestructor._choose(candidates, scores(held_out), held_out) == "rich"
    # A lead of four standard errors wins too.
    held_out = {"simple": base, "rich": base + 0.2 + noise}
    assert AutoDestructor._choose(candidates, scores(held_out), held_out) == "rich"
