"""destructors.plotting: what each picture draws is the model's own numbers."""

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import destructors.plotting as plotting  # noqa: E402
from destructors import RBIG, DeepDestructor, PCARotation  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=800)
    return np.column_stack([x, 0.5 * x + rng.normal(scale=0.5, size=800)])


@pytest.fixture(scope="module")
def model(data):
    return RBIG(max_layers=12, n_iter_no_change=4, random_state=0).fit(data)


# -- per-layer diagnostics -----------------------------------------------------


def test_score_lines_carry_the_model_arrays(model):
    ax = plotting.plot_layer_scores(model)
    train, held_out, kept = ax.get_lines()
    n = len(model.train_score_)
    assert n >= model.n_layers_ >= 1
    np.testing.assert_array_equal(train.get_xdata(), np.arange(1, n + 1))
    np.testing.assert_array_equal(train.get_ydata(), model.train_score_)
    np.testing.assert_array_equal(held_out.get_ydata(), model.validation_score_)
    assert (train.get_label(), held_out.get_label()) == ("fitting rows", "held-out rows")
    np.testing.assert_array_equal(kept.get_xdata(), [model.n_layers_] * 2)


def test_tc_line_carries_the_model_array_on_a_log_scale(model):
    ax = plotting.plot_tc_reduction(model)
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), model.tc_reduction_)
    assert ax.get_yscale() == "log"
    removed = model.tc_reduction_[: model.n_layers_].sum()
    assert ax.get_title().startswith(f"{removed:.3f} nats")


def test_diagnostics_draw_on_given_axes(model):
    fig = Figure()
    given = fig.subplots(2, 1)
    axes = plotting.plot_layer_diagnostics(model, axes=given)
    assert list(axes) == list(given)  # no pyplot figure was made
    assert plt.get_fignums() == []
    np.testing.assert_array_equal(axes[0].get_lines()[0].get_ydata(), model.train_score_)
    np.testing.assert_array_equal(axes[1].get_lines()[0].get_ydata(), model.tc_reduction_)
    with pytest.raises(ValueError, match="2 Axes, got 3"):
        plotting.plot_layer_diagnostics(model, axes=fig.subplots(1, 3))


def test_diagnostics_without_early_stopping_have_no_held_out_line(data):
    model = RBIG(max_layers=4, early_stopping=False, tol=None, random_state=0).fit(data)
    ax = plotting.plot_layer_scores(model)
    assert [line.get_label() for line in ax.get_lines()] == ["fitting rows", "depth kept"]


def test_diagnostics_refuse_models_that_recorded_none(data, model):
    built = DeepDestructor.from_layers([PCARotation().fit(data)])
    with pytest.raises(ValueError, match="recorded no per-layer diagnostics"):
        plotting.plot_layer_diagnostics(built)
    with pytest.raises(ValueError, match="PCARotation has no per-layer diagnostics"):
        plotting.plot_layer_scores(PCARotation().fit(data))
    assert plt.get_fignums() == []  # refused before drawing anything


# -- data vs samples ----------------------------------------------------------


def test_marginal_histograms_are_densities_of_data_and_samples(data, model):
    samples = model.sample(3000, random_state=0)
    axes = plotting.plot_marginals(data, samples, bins=30)
    assert len(axes) == 2
    for j, ax in enumerate(axes):
        filled, outline = ax.patches
        heights, edges, _ = filled.get_data()
        expected, _ = np.histogram(data[:, j], bins=edges, density=False)
        np.testing.assert_allclose(heights, expected / (len(data) * np.diff(edges)))
        # The data's range padded by 10 % holds every data row: area 1.
        assert np.sum(heights * np.diff(edges)) == pytest.approx(1.0)
        s_heights, s_edges, _ = outline.get_data()
        np.testing.assert_array_equal(s_edges, edges)
        expected, _ = np.histogram(samples[:, j], bins=edges)
        np.testing.assert_allclose(s_heights, expected / (len(samples) * np.diff(edges)))
        assert (filled.get_label(), outline.get_label()) == ("data", "samples")


def test_marginals_use_dataframe_names_and_check_shapes(data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(data, columns=["income", "spend"])
    axes = plotting.plot_marginals(frame, features=[1])
    assert [ax.get_title() for ax in axes] == ["spend"]
    assert len(axes[0].patches) == 1  # no samples given: only the data
    with pytest.raises(ValueError, match="samples have 3 features but the data have 2"):
        plotting.plot_marginals(data, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"indices in \[0, 2\)"):
        plotting.plot_marginals(data, features=[2])
    with pytest.raises(ValueError, match="bins must be an integer"):
        plotting.plot_marginals(data, bins=0)


def test_pair_plot_scatters_column_j_against_row_i(model):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]])
    samples = rng.normal(size=(700, 3))
    fig = plotting.plot_pairs(X, samples, max_points=400, names=["a", "b", "c"])
    axes = np.array(fig.axes[:9]).reshape(3, 3)
    rows = np.linspace(0, len(X) - 1, 400).astype(int)
    data_points, sample_points = axes[2, 0].collections
    np.testing.assert_array_equal(data_points.get_offsets(), X[rows][:, [0, 2]])
    s_rows = np.linspace(0, len(samples) - 1, 400).astype(int)
    np.testing.assert_array_equal(sample_points.get_offsets(), samples[s_rows][:, [0, 2]])
    assert len(axes[1, 1].patches) == 2 and not axes[1, 1].collections  # histograms
    assert [axes[2, c].get_xlabel() for c in range(3)] == ["a", "b", "c"]
    assert axes[1, 0].get_ylabel() == "b"
    assert axes[0, 1].get_xlim() == axes[1, 1].get_xlim()  # one range per feature
    assert len(fig.legends) == 1


def test_pair_plot_refuses_too_many_features():
    X = np.zeros((10, plotting.MAX_PAIR_FEATURES + 1))
    with pytest.raises(ValueError, match="choose at most 8 with features"):
        plotting.plot_pairs(X)
    fig = plotting.plot_pairs(np.random.default_rng(0).normal(size=(50, 9)), features=[0, 8])
    assert len(fig.axes) == 4


# -- density maps -------------------------------------------------------------


def _cell_centres(mesh):
    """Centres of a QuadMesh's cells, from its corner coordinates."""
    corners = mesh.get_coordinates()
    return 0.25 * (corners[:-1, :-1] + corners[1:, :-1] + corners[:-1, 1:] + corners[1:, 1:])


def test_density_image_is_exp_score_samples_at_the_cell_centres(model):
    ax = plotting.plot_density(model, extent=(-1, 9, -3, 6), resolution=41, log=False)
    mesh = ax.collections[0]
    centres = _cell_centres(mesh)
    gx, gy = np.meshgrid(np.linspace(-1, 9, 41), np.linspace(-3, 6, 41))
    np.testing.assert_allclose(centres[..., 0], gx, atol=1e-12)
    np.testing.assert_allclose(centres[..., 1], gy, atol=1e-12)
    expected = np.exp(model.score_samples(centres.reshape(-1, 2))).reshape(41, 41)
    np.testing.assert_allclose(np.asarray(mesh.get_array()), expected, rtol=1e-12)
    assert mesh.colorbar is not None
    assert mesh.colorbar.ax.get_ylabel() == "p(x)"


def test_log_density_keeps_values_and_floors_only_the_colour_scale(model, data):
    ax = plotting.plot_density(model, data, resolution=60)
    mesh = ax.collections[0]
    values = np.asarray(mesh.get_array())
    expected = model.score_samples(_cell_centres(mesh).reshape(-1, 2)).reshape(60, 60)
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    assert mesh.norm.vmin == pytest.approx(values.max() - 10.0)
    assert values.min() < mesh.norm.vmin  # below the scale: drawn, not changed
    assert mesh.colorbar.ax.get_ylabel() == "log p(x)"
    assert mesh.colorbar.extend == "min"
    # The extent is the data's range padded by 15 %.
    lo, hi = data.min(axis=0), data.max(axis=0)
    centres = _cell_centres(mesh)
    np.testing.assert_allclose(centres[0, 0], lo - 0.15 * (hi - lo))
    np.testing.assert_allclose(centres[-1, -1], hi + 0.15 * (hi - lo))


def test_density_map_integrates_to_one():
    X = np.random.default_rng(2).normal(size=(2000, 2)) * [1.0, 0.5]
    model = RBIG(max_layers=6, random_state=0).fit(X)
    ax = plotting.plot_density(model, extent=(-7, 7, -4, 4), resolution=281, log=False)
    cell = (14 / 280) * (8 / 280)
    assert np.asarray(ax.collections[0].get_array()).sum() * cell == pytest.approx(1, abs=5e-3)


def test_density_map_refuses_bad_input(data, model):
    shallow = RBIG(max_layers=2, early_stopping=False, tol=None, random_state=0)
    three = shallow.fit(np.c_[data, data[:, 0] ** 2])
    with pytest.raises(ValueError, match="models of 2 features"):
        plotting.plot_density(three)
    with pytest.raises(ValueError, match="x_min < x_max"):
        plotting.plot_density(model, extent=(1, 0, 0, 1))
    with pytest.raises(ValueError, match="resolution must be an integer >= 2"):
        plotting.plot_density(model, extent=(0, 1, 0, 1), resolution=1)
    with pytest.raises(ValueError, match="dynamic_range"):
        plotting.plot_density(model, extent=(0, 1, 0, 1), dynamic_range=0)
    assert plt.get_fignums() == []


def test_density_map_without_colour_bar_or_extent_uses_model_samples(model):
    ax = plotting.plot_density(model, resolution=10, colorbar=False)
    mesh = ax.collections[0]
    assert mesh.colorbar is None
    samples = model.sample(2000, random_state=0)
    lo, hi = samples.min(axis=0), samples.max(axis=0)
    np.testing.assert_allclose(_cell_centres(mesh)[0, 0], lo - 0.15 * (hi - lo))


# -- the optional dependency ---------------------------------------------------


def test_import_needs_no_matplotlib_and_calls_say_how_to_install():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import numpy as np\n"
        "from destructors import plotting\n"
        "try:\n"
        "    plotting.plot_marginals(np.zeros((5, 2)))\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert 'pip install "destructors[plot]"' in result.stdout
