"""Pictures of fitted destructors: per-layer diagnostics, data vs samples, density maps.

Needs matplotlib (``pip install "destructors[plot]"``), imported only when
a function here is called, so ``import destructors.plotting`` works without
it. Every function draws on the Axes (or Figure) it is given, or on new ones
from :mod:`matplotlib.pyplot` when given none, and returns what it drew on,
in the style of scikit-learn's and pandas' plotting functions.

- :func:`plot_layer_diagnostics` (and its two panels,
  :func:`plot_layer_scores` and :func:`plot_tc_reduction`): the mean
  log-likelihood of the fitting and held-out rows after each layer, and the
  total correlation each layer removed, as a deep destructor records them
  while it chooses its depth (``train_score_``, ``validation_score_``,
  ``tc_reduction_``).
- :func:`plot_marginals` and :func:`plot_pairs`: histograms and pairwise
  scatter plots of data and of samples drawn from a model, overlaid.
- :func:`plot_density`: the exact density (or log-density) of a model of two
  features on a grid, with a colour bar.

A note on the straight edges seen in density maps of RBIG models: they are
the model, not the picture. Each layer's marginal maps follow the rows that
layer was fitted on between their smallest and largest value and continue
with their end slopes beyond (Gaussian tails). Outside the box those ranges
span (for the first layer, the bounding box of the training data; later
layers add boxes in their own rotated coordinates), the density falls
steeply, while inside it, empty regions between the data keep a low but
flat density that the data cannot pin down. On a log scale both show: the
drop at the box's edge is many nats deep. :func:`plot_density` draws the
exact ``score_samples`` of each grid cell's centre (a ``pcolormesh`` whose
cells are centred on the grid points, so no half-cell shift either).
"""

import numbers

import numpy as np

_INSTALL_HINT = 'pip install "destructors[plot]"'

# Pair plots of more features than this are unreadable at any size.
MAX_PAIR_FEATURES = 8


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"destructors.plotting needs matplotlib, which is not installed: {_INSTALL_HINT}"
        ) from exc
    return plt


def _new_axes(ax, nrows=1, ncols=1, **kwargs):
    """``ax`` as given, or new Axes on a new pyplot figure."""
    if ax is not None:
        return ax
    _, axes = _pyplot().subplots(nrows, ncols, layout="constrained", **kwargs)
    return axes


def _integer_ticks(ax):
    """Layer numbers on the x axis are whole."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _diagnostics(model):
    """The model's per-layer arrays, or a ValueError saying what is missing."""
    name = type(model).__name__
    train = getattr(model, "train_score_", None)
    tc = getattr(model, "tc_reduction_", None)
    if train is None or tc is None or not hasattr(model, "n_layers_"):
        raise ValueError(
            f"{name} has no per-layer diagnostics (train_score_, tc_reduction_, n_layers_): "
            "they are recorded by a fitted DeepDestructor or RBIG."
        )
    train = np.asarray(train, dtype=float)
    if train.size == 0:
        raise ValueError(
            f"this {name} recorded no per-layer diagnostics (it was built from fitted "
            "layers, not fitted): nothing to plot."
        )
    validation = getattr(model, "validation_score_", None)
    if validation is not None:
        validation = np.asarray(validation, dtype=float)
    return train, validation, np.asarray(tc, dtype=float), int(model.n_layers_)


def plot_layer_scores(model, ax=None):
    """Mean log-likelihood after each layer, on the fitting and held-out rows.

    Parameters
    ----------
    model : fitted DeepDestructor
        Any model with ``train_score_``, ``validation_score_`` (may be
        None, without early stopping) and ``n_layers_``, such as
        :class:`~destructors.RBIG`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        One line per recorded score (labelled ``"fitting rows"`` and
        ``"held-out rows"``; x is the layer number, from 1) and a dotted
        vertical line at the depth kept, ``n_layers_``.

    See Also
    --------
    plot_layer_diagnostics : This panel and :func:`plot_tc_reduction` side by side.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors.plotting import plot_layer_scores
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 2))
    >>> model = RBIG(max_layers=10, random_state=0).fit(X)
    >>> ax = plot_layer_scores(model)
    >>> [line.get_label() for line in ax.get_lines()]
    ['fitting rows', 'held-out rows', 'depth kept']
    """
    train, validation, _, n_layers = _diagnostics(model)
    ax = _new_axes(ax)
    layers = np.arange(1, train.size + 1)
    ax.plot(layers, train, label="fitting rows")
    if validation is not None:
        ax.plot(layers, validation, label="held-out rows")
    ax.axvline(n_layers, color="k", ls=":", lw=1, label="depth kept")
    _integer_ticks(ax)
    ax.set_xlabel("layer")
    ax.set_ylabel("mean log-likelihood (nats)")
    ax.legend()
    return ax


def plot_tc_reduction(model, ax=None):
    """Total correlation each layer removed, on a log scale.

    Parameters
    ----------
    model : fitted DeepDestructor
        Any model with ``tc_reduction_`` and ``n_layers_``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        The line of ``tc_reduction_`` against the layer number (from 1),
        a dotted vertical line at ``n_layers_``, and a title with the total
        removed by the layers kept. Estimates of zero or below (a layer
        that removed nothing) cannot be shown on a log scale: they are left
        out as gaps in the line, not moved.

    See Also
    --------
    plot_layer_diagnostics : This panel and :func:`plot_layer_scores` side by side.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors.plotting import plot_tc_reduction
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 2))
    >>> model = RBIG(max_layers=10, random_state=0).fit(X)
    >>> ax = plot_tc_reduction(model)
    >>> ax.get_yscale()
    'log'
    """
    _, _, tc, n_layers = _diagnostics(model)
    ax = _new_axes(ax)
    layers = np.arange(1, tc.size + 1)
    ax.plot(layers, tc, ".-", label="total correlation removed")
    ax.set_yscale("log", nonpositive="mask")
    ax.axvline(n_layers, color="k", ls=":", lw=1, label="depth kept")
    _integer_ticks(ax)
    ax.set_xlabel("layer")
    ax.set_ylabel("total correlation removed (nats)")
    ax.set_title(f"{tc[:n_layers].sum():.3f} nats removed by the layers kept", fontsize=9)
    return ax


def plot_layer_diagnostics(model, axes=None):
    """The per-layer diagnostics of a deep destructor, in two panels.

    Left, :func:`plot_layer_scores`: mean log-likelihood of the fitting and
    held-out rows after each layer fitted while the depth was chosen. Right,
    :func:`plot_tc_reduction`: the total correlation each layer removed.
    A dotted line marks the depth kept, ``n_layers_``.

    Parameters
    ----------
    model : fitted DeepDestructor
        Such as :class:`~destructors.RBIG`.
    axes : sequence of two matplotlib Axes, default=None
        Where to draw; two side-by-side Axes of a new figure when None.

    Returns
    -------
    axes : ndarray of two matplotlib Axes
        The score panel and the total correlation panel.

    Raises
    ------
    ValueError
        If the model recorded no per-layer diagnostics.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors.plotting import plot_layer_diagnostics
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 2))
    >>> model = RBIG(max_layers=10, random_state=0).fit(X)
    >>> ax_score, ax_tc = plot_layer_diagnostics(model)
    >>> bool(np.array_equal(ax_score.get_lines()[0].get_ydata(), model.train_score_))
    True
    """
    _diagnostics(model)  # refuse before creating a figure
    if axes is None:
        axes = _new_axes(None, 1, 2, figsize=(9, 3.2))
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != 2:
        raise ValueError(f"plot_layer_diagnostics draws on 2 Axes, got {axes.size}.")
    plot_layer_scores(model, axes[0])
    plot_tc_reduction(model, axes[1])
    return axes


def _as_table(X, what):
    """Float array of shape (n, d) and the column names of a DataFrame, if any."""
    names = getattr(X, "columns", None)
    names = [str(c) for c in names] if names is not None else None
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array, got shape {X.shape}.")
    return X, names


def _features_and_names(X, samples, features, names, data_names):
    d = X.shape[1]
    if samples is not None and samples.shape[1] != d:
        raise ValueError(
            f"samples have {samples.shape[1]} features but the data have {d}."
        )
    if features is None:
        features = list(range(d))
    features = [int(j) for j in np.atleast_1d(features)]
    bad = [j for j in features if not 0 <= j < d]
    if bad or not features:
        raise ValueError(f"features must be indices in [0, {d}), got {bad or features}.")
    if names is None:
        names = data_names or [f"x{j}" for j in range(d)]
    if len(names) != d:
        raise ValueError(f"names has {len(names)} entries for {d} features.")
    return features, [str(names[j]) for j in features]


def _thin(X, max_points):
    """At most ``max_points`` rows, evenly spaced (deterministic, no random state)."""
    if max_points is None or X.shape[0] <= max_points:
        return X
    return X[np.linspace(0, X.shape[0] - 1, max_points).astype(int)]


def _ranges(X, features, pad=0.1):
    lo, hi = X[:, features].min(axis=0), X[:, features].max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return lo - pad * width, hi + pad * width


def _histograms(ax, X, samples, j, lo, hi, bins):
    """Data (filled) and samples (outline) of feature ``j`` on shared bins, unit area."""
    edges = np.linspace(lo, hi, bins + 1)
    # Normalised by all rows, so mass outside the range is not spread over the bins.
    heights, _ = np.histogram(X[:, j], bins=edges)
    ax.stairs(heights / (X.shape[0] * np.diff(edges)), edges, fill=True, alpha=0.35,
              color="C0", label="data")
    if samples is not None:
        heights, _ = np.histogram(samples[:, j], bins=edges)
        ax.stairs(heights / (samples.shape[0] * np.diff(edges)), edges, lw=1.2,
                  color="C1", label="samples")
    ax.set_xlim(lo, hi)


def _check_count(value, name, low=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")


def plot_marginals(X, samples=None, *, features=None, names=None, bins=40, axes=None):
    """Histograms of each feature of the data and of samples, overlaid.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data (a DataFrame's column names become the titles).
    samples : array-like of shape (n_draws, n_features), default=None
        Draws from a model, e.g. ``model.sample(len(X), random_state=0)``.
    features : sequence of int, default=None
        Column indices to show (default: all).
    names : sequence of str, default=None
        A name for every column of ``X`` (default: its column names, or
        ``x0, x1, ...``).
    bins : int, default=40
        Bins over the data's range of each feature, padded by 10 %; both
        histograms share them and are densities of all their rows, so
        samples outside the range lower the outline's area below 1 rather
        than being spread over the bins.
    axes : sequence of matplotlib Axes, default=None
        One per feature shown; a row of new Axes when None.

    Returns
    -------
    axes : ndarray of matplotlib Axes
        One per feature, each with the data's histogram (a filled
        ``StepPatch``, labelled ``"data"``) and the samples' (an outline,
        ``"samples"``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors.plotting import plot_marginals
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 2))
    >>> model = RBIG(max_layers=10, random_state=0).fit(X)
    >>> axes = plot_marginals(X, model.sample(500, random_state=0))
    >>> [ax.get_title() for ax in axes]
    ['x0', 'x1']
    """
    X, data_names = _as_table(X, "X")
    if samples is not None:
        samples, _ = _as_table(samples, "samples")
    _check_count(bins, "bins")
    features, labels = _features_and_names(X, samples, features, names, data_names)
    if axes is None:
        axes = _new_axes(None, 1, len(features), figsize=(2.6 * len(features), 2.4),
                         squeeze=False)
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != len(features):
        raise ValueError(f"{len(features)} features to show but {axes.size} Axes given.")
    lo, hi = _ranges(X, features)
    for k, (ax, j) in enumerate(zip(axes, features, strict=True)):
        _histograms(ax, X, samples, j, lo[k], hi[k], bins)
        ax.set_title(labels[k], fontsize=9)
    axes[0].legend(fontsize=8)
    return axes


def plot_pairs(X, samples=None, *, features=None, names=None, bins=40, max_points=2000,
               fig=None):
    """A pair plot of the data and of samples: histograms and scatter plots, overlaid.

    The diagonal holds each feature's histograms (as :func:`plot_marginals`),
    the other cells the scatter plot of two features (column ``j`` against
    row ``i``), data first and samples on top, in the data's range padded
    by 10 %.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data (a DataFrame's column names label the axes).
    samples : array-like of shape (n_draws, n_features), default=None
        Draws from a model, e.g. ``model.sample(len(X), random_state=0)``.
    features : sequence of int, default=None
        Column indices to show (default: all, at most
        ``MAX_PAIR_FEATURES`` = 8).
    names : sequence of str, default=None
        A name for every column of ``X``.
    bins : int, default=40
        Histogram bins on the diagonal.
    max_points : int or None, default=2000
        Points per scatter plot, from each of data and samples: evenly
        spaced rows, so the picture is reproducible; None draws all.
    fig : matplotlib Figure or SubFigure, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib Figure or SubFigure
        Its Axes grid (``fig.axes``, row by row) has one row and column per
        feature shown.

    Raises
    ------
    ValueError
        If more than ``MAX_PAIR_FEATURES`` features would be shown.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors.plotting import plot_pairs
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 3))
    >>> model = RBIG(max_layers=10, random_state=0).fit(X)
    >>> fig = plot_pairs(X, model.sample(500, random_state=0))
    >>> len(fig.axes)
    9
    """
    X, data_names = _as_table(X, "X")
    if samples is not None:
        samples, _ = _as_table(samples, "samples")
    _check_count(bins, "bins")
    if max_points is not None:
        _check_count(max_points, "max_points")
    features, labels = _features_and_names(X, samples, features, names, data_names)
    k = len(features)
    if k > MAX_PAIR_FEATURES:
        raise ValueError(
            f"a pair plot of {k} features is unreadable; choose at most "
            f"{MAX_PAIR_FEATURES} with features=[...]."
        )
    if fig is None:
        fig = _pyplot().figure(figsize=(1.9 * k + 1, 1.9 * k + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(k, k, squeeze=False))
    lo, hi = _ranges(X, features)
    X_shown = _thin(X, max_points)
    S_shown = None if samples is None else _thin(samples, max_points)
    # Larger points for small tables, so a few hundred rows stay visible.
    size = 4.0 if max(len(X_shown), 0 if S_shown is None else len(S_shown)) <= 1000 else 1.5
    style = {"s": size, "alpha": 0.45, "rasterized": True, "linewidths": 0}
    for r, i in enumerate(features):
        for c, j in enumerate(features):
            ax = axes[r, c]
            if r == c:
                _histograms(ax, X, samples, j, lo[c], hi[c], bins)
                ax.set_yticks([])
            else:
                ax.scatter(X_shown[:, j], X_shown[:, i], color="C0", label="data", **style)
                if S_shown is not None:
                    ax.scatter(S_shown[:, j], S_shown[:, i], color="C1", label="samples",
                               **style)
                ax.set_xlim(lo[c], hi[c])
                ax.set_ylim(lo[r], hi[r])
            if r == k - 1:
                ax.set_xlabel(labels[c], fontsize=8)
            else:
                ax.set_xticklabels([])
            if c == 0 and r > 0:
                ax.set_ylabel(labels[r], fontsize=8)
            elif c > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    if k == 1:
        axes[0, 0].set_ylabel(labels[0], fontsize=8)
    handles, legend_labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="outside upper center", ncols=2, fontsize=8)
    return fig


def plot_density(model, X=None, *, extent=None, resolution=200, log=True, dynamic_range=10.0,
                 cmap="viridis", colorbar=True, ax=None):
    """The exact density of a model of two features on a grid, with a colour bar.

    Each cell of a ``resolution`` x ``resolution`` grid is coloured by the
    model's ``score_samples`` at its centre (``log=True``) or by its
    exponential, the density (``log=False``); the values drawn are exactly
    those, and the cells are centred on the grid points.

    Parameters
    ----------
    model : fitted density model of 2 features
        Anything with ``score_samples`` and ``n_features_in_ == 2``, such
        as :class:`~destructors.RBIG`.
    X : array-like of shape (n_samples, 2), default=None
        Data whose range, padded by 15 %, gives the extent when ``extent``
        is None; when both are None, the range of 2,000 samples of the model
        (``random_state=0``) is used.
    extent : (x_min, x_max, y_min, y_max), default=None
        The first and last grid points in each direction.
    resolution : int, default=200
        Grid points per direction (at least 2).
    log : bool, default=True
        Colour by log p(x) (nats) when True, by p(x) when False.
    dynamic_range : float or None, default=10.0
        With ``log=True``, the colour scale spans this many nats below the
        maximum on the grid; lower values take the lowest colour (the colour
        bar's triangle) but are not changed. None spans all values.
    cmap : str or Colormap, default="viridis"
        Colour map.
    colorbar : bool, default=True
        Add a colour bar labelled ``log p(x)`` or ``p(x)``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        Its first collection is the ``QuadMesh`` of the grid values
        (``ax.collections[0].get_array()``, rows along y), with the colour
        bar as its ``colorbar`` attribute.

    Notes
    -----
    Straight edges in the log-density of an RBIG model are part of the
    model: see the note on density maps in the module docstring.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors.plotting import plot_density
    >>> X = np.random.default_rng(0).normal(size=(500, 2))
    >>> model = RBIG(max_layers=5, random_state=0).fit(X)
    >>> ax = plot_density(model, extent=(-3, 3, -3, 3), resolution=50)
    >>> ax.collections[0].get_array().shape
    (50, 50)
    >>> ax.collections[0].colorbar.ax.get_ylabel()
    'log p(x)'
    """
    if getattr(model, "n_features_in_", None) != 2 or not hasattr(model, "score_samples"):
        raise ValueError(
            f"plot_density draws models of 2 features with score_samples; got a "
            f"{type(model).__name__} of {getattr(model, 'n_features_in_', 'unknown')} features."
        )
    _check_count(resolution, "resolution", low=2)
    if dynamic_range is not None and not (
        isinstance(dynamic_range, numbers.Real) and dynamic_range > 0
    ):
        raise ValueError(
            f"dynamic_range must be a positive number or None, got {dynamic_range!r}."
        )
    if extent is None:
        if X is None:
            source = model.sample(2000, random_state=0)
        else:
            source, _ = _as_table(X, "X")
            if source.shape[1] != 2:
                raise ValueError(f"X must have 2 features, got {source.shape[1]}.")
        lo, hi = source.min(axis=0), source.max(axis=0)
        pad = 0.15 * np.where(hi > lo, hi - lo, 1.0)
        extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    extent = np.asarray(extent, dtype=float)
    if extent.shape != (4,) or not np.all(np.isfinite(extent)) or not (
        extent[0] < extent[1] and extent[2] < extent[3]
    ):
        raise ValueError(
            "extent must be finite (x_min, x_max, y_min, y_max) with x_min < x_max and "
            f"y_min < y_max, got {tuple(extent)}."
        )
    gx = np.linspace(extent[0], extent[1], resolution)
    gy = np.linspace(extent[2], extent[3], resolution)
    mx, my = np.meshgrid(gx, gy)
    log_p = np.asarray(model.score_samples(np.column_stack([mx.ravel(), my.ravel()])))
    log_p = log_p.reshape(mx.shape)
    values = log_p if log else np.exp(log_p)
    vmin = None
    if log and dynamic_range is not None:
        vmin = np.max(log_p) - dynamic_range
    ax = _new_axes(ax)
    mesh = ax.pcolormesh(gx, gy, values, shading="nearest", cmap=cmap, vmin=vmin,
                         rasterized=True)
    if colorbar:
        extend = "min" if vmin is not None and np.min(log_p) < vmin else "neither"
        ax.figure.colorbar(mesh, ax=ax, label="log p(x)" if log else "p(x)", extend=extend)
    return ax
