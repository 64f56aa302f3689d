"""A fixed sequence of destructors fitted one after another."""

import functools

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, clone

from ._fused import FusedProgram
from .base import BaseDestructor, capability, fused_steps, standard_normal_log_pdf
from .preprocessing import as_destructor
from .registry import register_layer


def forward_through(layers, X):
    """Push ``X`` through fitted layers, summing their log-determinants.

    Parameters
    ----------
    layers : sequence of fitted destructors
        Applied in order.
    X : ndarray of shape (n_samples, n_features)
        Validated float64 input.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_features)
        Output of the last layer.
    log_det : ndarray of shape (n_samples,)
        Sum of the layers' log|det J|.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> from destructors.composite import forward_through
    >>> X = np.random.default_rng(0).normal(size=(10, 2))
    >>> Z, ld = forward_through([PCARotation(whiten=True).fit(X)], X)
    >>> Z.shape, ld.shape
    ((10, 2), (10,))
    """
    log_det = np.zeros(X.shape[0])
    for layer in layers:
        X, ld = layer._forward(X)
        log_det += ld
    return X, log_det


def inverse_through(layers, Z):
    """Invert fitted layers in reverse order, summing the inverses' log-dets.

    Parameters
    ----------
    layers : sequence of fitted destructors
        The layers as applied forwards.
    Z : ndarray of shape (n_samples, n_features)
        Validated float64 latent points.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Points in data space.
    log_det : ndarray of shape (n_samples,)
        Sum of the inverse layers' log|det J|.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> from destructors.composite import forward_through, inverse_through
    >>> X = np.random.default_rng(0).normal(size=(10, 2))
    >>> layers = [PCARotation(whiten=True).fit(X)]
    >>> bool(np.allclose(inverse_through(layers, forward_through(layers, X)[0])[0], X))
    True
    """
    log_det = np.zeros(Z.shape[0])
    for layer in reversed(layers):
        Z, ld = layer._inverse(Z)
        log_det += ld
    return Z, log_det


def _plan(layers):
    """How to run a chain: fused programs for runs of describable layers.

    Consecutive layers that give a fused description are merged into one
    :class:`~destructors._fused.FusedProgram`; any other layer runs through
    its own ``_forward``/``_inverse``. Returns ``(forward, inverse,
    log_density)`` in forward order, ``log_density`` the fused program's
    score-only map (None for a layer that runs on its own).
    """
    plan, run = [], []

    def flush():
        if run:
            program = FusedProgram(list(run))
            plan.append((program.forward, program.inverse, program.log_density))
            run.clear()

    for layer in layers:
        steps = fused_steps(layer)
        if steps is None:
            flush()
            plan.append((layer._forward, layer._inverse, None))
        else:
            run.extend(steps)
    flush()
    return plan


def check_layers(layers, owner):
    """Refuse anything but destructors as the layers of a composite.

    Parameters
    ----------
    layers : sequence
        Candidate layers.
    owner : str
        Name of the composite, for the message.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from destructors.composite import check_layers
    >>> check_layers([StandardScaler()], "CompositeDestructor")
    Traceback (most recent call last):
    ...
    ValueError: CompositeDestructor layer 0 is StandardScaler, not a destructor: ...
    """
    for i, layer in enumerate(layers):
        if not isinstance(layer, BaseDestructor):
            raise ValueError(
                f"{owner} layer {i} is {type(layer).__name__}, not a destructor: "
                "a layer must be an invertible map that reports its log|det J| "
                "(a BaseDestructor), or its density would be wrong."
            )


def _chained_marginal(marginal, rest, X, features):
    """One layer's marginal log-density given that of its output (``rest``)."""
    return marginal(X, features, rest)


class ChainMixin:
    """Apply ``layers_`` in order, fusing runs of layers that describe themselves.

    Shared by :class:`CompositeDestructor` and
    :class:`~destructors.DeepDestructor`. The plan is derived from
    ``layers_`` on use and cached by the identity of the layers, so replacing
    or truncating ``layers_`` is always honoured, and it is never pickled.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import CompositeDestructor, MarginalGaussianizer, PCARotation
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 2))
    >>> model = CompositeDestructor([MarginalGaussianizer(), PCARotation()]).fit(X)
    >>> Z, log_det = model.transform_log_det(X)  # the chain, fused
    >>> Z1, ld1 = model.layers_[0].transform_log_det(X)
    >>> Z2, ld2 = model.layers_[1].transform_log_det(Z1)
    >>> bool(np.allclose(Z, Z2) and np.allclose(log_det, ld1 + ld2))
    True
    """

    def _chain_plan(self):
        layers = tuple(self.layers_)
        return self._derived("plan", lambda: _plan(layers), *layers)

    def _forward(self, X):
        log_det = np.zeros(X.shape[0])
        for forward, _, _ in self._chain_plan():
            X, ld = forward(X)
            log_det += ld
        return X, log_det

    def _inverse(self, Z):
        log_det = np.zeros(Z.shape[0])
        for _, inverse, _ in reversed(self._chain_plan()):
            Z, ld = inverse(Z)
            log_det += ld
        return Z, log_det

    def _log_density(self, X):
        # The last run of fused layers scores its chunks in cache: no latent
        # array is stored when the whole chain is fused (the usual case).
        *head, (forward, _, log_density) = self._chain_plan()
        log_det = 0.0  # no array unless a layer runs before the last fused run
        for step_forward, _, _ in head:
            X, ld = step_forward(X)
            log_det = log_det + ld
        if log_density is None:
            Z, ld = forward(X)
            return standard_normal_log_pdf(Z) + (log_det + ld)
        result = log_density(X)
        result += log_det
        return result

    def _fused_steps(self):
        steps = []
        for layer in self.layers_:
            more = fused_steps(layer)
            if more is None:
                return None
            steps.extend(more)
        return steps

    def _n_parameters(self):
        total = 0
        for i, layer in enumerate(self.layers_):
            count = capability(layer, "_n_parameters")
            if count is None:
                raise AttributeError(
                    f"{type(self).__name__} layer {i} ({type(layer).__name__}) does not "
                    "declare its number of parameters, so the model has no n_parameters_."
                )
            total += count()
        return total

    def _marginal_log_density(self, X, features, rest):
        # From the last layer back: each layer turns the marginal of its
        # output (``rest``; None for the standard normal) into that of its
        # input, which only layers that keep the features apart can do.
        for i in reversed(range(len(self.layers_))):
            layer = self.layers_[i]
            marginal = capability(layer, "_marginal_log_density")
            if marginal is None:
                raise NotImplementedError(
                    f"The marginal density of a subset of features has no closed form "
                    f"through {type(self).__name__} layer {i} ({type(layer).__name__}): "
                    "it mixes features. Only models made of marginal layers, optionally "
                    "ending in a Gaussian mixture layer, have exact marginals."
                )
            rest = functools.partial(_chained_marginal, marginal, rest)
        return rest(X, features)


@register_layer("composite", "model")
class CompositeDestructor(ChainMixin, ClassNamePrefixFeaturesOutMixin, BaseDestructor):
    """Chain destructors: each is cloned and fitted on the previous output.

    Unlike :class:`sklearn.pipeline.Pipeline`, the log-determinants of all
    steps are summed, so :meth:`score_samples` is the exact density of the
    composed map.

    Parameters
    ----------
    layers : list of destructors or affine scikit-learn scalers
        Unfitted templates; they are cloned, never fitted in place. A
        scikit-learn transformer (``StandardScaler``, ``MinMaxScaler``,
        ``MaxAbsScaler``, ``RobustScaler`` or another per-feature affine
        map) is wrapped in
        :class:`~destructors.preprocessing.ScalerDestructor`, so its
        Jacobian is counted; any other transformer is refused when fitting.

    Attributes
    ----------
    layers_ : list of destructors
        The fitted clones, in order.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import CompositeDestructor, MarginalGaussianizer, PCARotation
    >>> X = np.random.default_rng(0).gamma(2.0, size=(1000, 2))
    >>> model = CompositeDestructor([MarginalGaussianizer(), PCARotation()]).fit(X)
    >>> len(model.layers_)
    2
    >>> bool(np.allclose(model.inverse_transform(model.transform(X)), X))
    True
    """

    _parameter_constraints: dict = {"layers": [list, tuple]}

    def __init__(self, layers):
        self.layers = layers

    def get_params(self, deep=True):
        """Get parameters; with ``deep``, also each layer's as ``layers__<i>__<name>``.

        Exposing the layers' parameters lets a caller (such as
        :class:`~destructors.DeepDestructor` seeding every ``random_state``)
        reach them, as :class:`~sklearn.pipeline.Pipeline` does for its steps.

        Parameters
        ----------
        deep : bool, default=True
            Include the parameters of the layers.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=False)
        if deep and isinstance(self.layers, (list, tuple)):
            for i, layer in enumerate(self.layers):
                if hasattr(layer, "get_params"):
                    for key, value in layer.get_params(deep=True).items():
                        params[f"layers__{i}__{key}"] = value
        return params

    def set_params(self, **params):
        """Set parameters, including a layer's as ``layers__<i>__<name>``.

        Parameters
        ----------
        **params : dict
            Parameter names mapped to new values.

        Returns
        -------
        self : CompositeDestructor
            This estimator.
        """
        nested = {k: params.pop(k) for k in list(params) if k.startswith("layers__")}
        super().set_params(**params)  # a new ``layers`` first, then its layers
        for key, value in nested.items():
            index, _, sub_key = key[len("layers__") :].partition("__")
            if not (index.isdigit() and sub_key and int(index) < len(self.layers)):
                raise ValueError(
                    f"Invalid parameter {key!r} for {type(self).__name__}: layer "
                    "parameters are named 'layers__<i>__<name>' with i below "
                    f"{len(self.layers)}."
                )
            self.layers[int(index)].set_params(**{sub_key: value})
        return self

    def _fit(self, X):
        self._fit_forward(X)
        return self

    def _fit_forward(self, X, kept=None):
        # ``kept``: per step, an already fitted step to apply as it is, or
        # None to fit the template (a deep model's refit that keeps rotations).
        if len(self.layers) == 0:
            raise ValueError("CompositeDestructor needs at least one layer.")
        templates = self._templates()
        kept = [None] * len(templates) if kept is None else kept
        self.n_features_in_ = X.shape[1]
        self._n_features_out = X.shape[1]
        self.layers_ = []
        log_det = np.zeros(X.shape[0])
        for template, step in zip(templates, kept, strict=True):
            if step is None:
                step = clone(template)
                X, ld = step._fit_forward(X)
            else:
                X, ld = step._forward(X)
            log_det += ld
            self.layers_.append(step)
        return X, log_det

    def _refit_forward(self, X, keep):
        """A clone fitted on ``X``, reusing the fitted steps ``keep(step)`` accepts."""
        layer = clone(self)
        Z, log_det = layer._fit_forward(X, [s if keep(s) else None for s in self.layers_])
        return layer, Z, log_det

    def _fit_stream(self, stream):
        if len(self.layers) == 0:
            raise ValueError("CompositeDestructor needs at least one layer.")
        templates = self._templates()
        self._n_features_out = stream.n_features
        self.layers_ = [stream.fit(clone(template)) for template in templates]

    def _templates(self):
        # Destructors as given; an affine scikit-learn scaler wrapped so that
        # its Jacobian is counted (destructors.preprocessing); anything else
        # refused by name.
        owner = type(self).__name__
        return [as_destructor(step, owner, i) for i, step in enumerate(self.layers)]
