"""Layers by name: one registry that options, the command line and tests read.

Every layer class registers itself where it is defined, with a name and a
kind (``"marginal"``, ``"rotation"``, ``"layer"`` for other exact layers,
``"model"`` for composites and deep models). ``RBIG``'s options, the
command line's choices, error messages, the safe model files and the
common tests all look layers up here, so a new layer type is one new
module plus its ``@register_layer`` line; nothing keeps a second list of
class names.
"""

from dataclasses import dataclass

from ._compat import StrOptions

KINDS = ("marginal", "rotation", "layer", "model")


@dataclass(frozen=True)
class LayerEntry:
    """One registered layer type.

    Attributes
    ----------
    name : str
        The registry name, e.g. ``"pca"``.
    kind : str
        One of :data:`KINDS`.
    cls : type
        The destructor class.

    Examples
    --------
    >>> from destructors.registry import registered_layers
    >>> entry = next(e for e in registered_layers() if e.name == "pca")
    >>> entry.kind, entry.cls.__name__
    ('rotation', 'PCARotation')
    """

    name: str
    kind: str
    cls: type


_REGISTRY: dict = {}


def register_layer(name, kind):
    """Class decorator: register a destructor class under ``name``.

    Parameters
    ----------
    name : str
        Registry name; unique within its kind.
    kind : {"marginal", "rotation", "layer", "model"}
        What sort of layer it is. Rotations are what ``RBIG(rotation=...)``
        offers; marginals what ``RBIG(marginal=...)`` offers.

    Returns
    -------
    decorator : callable
        Registers the class and returns it unchanged.

    Examples
    --------
    >>> from destructors import PCARotation
    >>> from destructors.registry import get_layer
    >>> get_layer("pca", "rotation") is PCARotation
    True
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")

    def decorator(cls):
        key = (kind, name)
        old = _REGISTRY.get(key)
        if old is not None and old.cls.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"A {kind} layer named {name!r} is already registered ({old.cls.__name__})."
            )
        _REGISTRY[key] = LayerEntry(name, kind, cls)
        return cls

    return decorator


def unregister_layer(name, kind):
    """Remove a registered layer type (for layers registered for a while, as in tests).

    Parameters
    ----------
    name : str
        Registry name.
    kind : str
        One of :data:`KINDS`.

    Examples
    --------
    >>> from destructors import PCARotation
    >>> from destructors.registry import layer_names, register_layer, unregister_layer
    >>> _ = register_layer("pca-again", "rotation")(PCARotation)
    >>> unregister_layer("pca-again", "rotation")
    >>> "pca-again" in layer_names("rotation")
    False
    """
    if _REGISTRY.pop((kind, name), None) is None:
        raise ValueError(f"No {kind} layer named {name!r} is registered.")


def layer_kind(layer):
    """The kind a layer's class is registered under, or None if it is not registered.

    Parameters
    ----------
    layer : destructor
        Fitted or not.

    Returns
    -------
    kind : str or None
        One of :data:`KINDS`.

    Examples
    --------
    >>> from destructors import MarginalGaussianizer, PCARotation
    >>> from destructors.registry import layer_kind
    >>> layer_kind(PCARotation()), layer_kind(MarginalGaussianizer()), layer_kind(object())
    ('rotation', 'marginal', None)
    """
    _load_builtin()
    for entry in _REGISTRY.values():
        if type(layer) is entry.cls:
            return entry.kind
    return None


def _load_builtin():
    # The built-in layers register themselves when their modules are imported.
    import importlib

    import destructors

    for module in destructors.LAYER_MODULES:
        importlib.import_module(f"destructors.{module}")


def registered_layers(kind=None):
    """Registered layer types, in registration order.

    Parameters
    ----------
    kind : str or None, default=None
        Only this kind; ``None`` lists every kind.

    Returns
    -------
    entries : list of LayerEntry
        The registered types.

    Examples
    --------
    >>> from destructors.registry import registered_layers
    >>> "greedy" in [e.name for e in registered_layers("rotation")]
    True
    """
    _load_builtin()
    return [e for e in _REGISTRY.values() if kind is None or e.kind == kind]


def layer_names(kind):
    """Names of the registered layers of one kind.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    names : list of str
        In registration order.

    Examples
    --------
    >>> from destructors.registry import layer_names
    >>> sorted(layer_names("rotation"))
    ['greedy', 'ica', 'learned', 'pca', 'random']
    """
    return [e.name for e in registered_layers(kind)]


def get_layer(name, kind):
    """The class registered as ``name`` in ``kind``, or a ValueError listing the choices.

    Parameters
    ----------
    name : str
        Registry name.
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    cls : type
        The destructor class.

    Examples
    --------
    >>> from destructors.registry import get_layer
    >>> get_layer("random", "rotation").__name__
    'RandomRotation'
    """
    _load_builtin()
    entry = _REGISTRY.get((kind, name))
    if entry is None:
        raise ValueError(
            f"Unknown {kind} layer {name!r}; registered: {', '.join(layer_names(kind))}."
        )
    return entry.cls


def registered_names(kind):
    """A parameter constraint: any name registered in ``kind`` at validation time.

    For ``_parameter_constraints``: unlike a fixed ``StrOptions``, it reads
    the registry when a parameter is validated, so layers registered after
    import (a user's, say) are accepted, and error messages list them.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    constraint : StrOptions
        Whose ``options`` are the names registered in ``kind``.

    Examples
    --------
    >>> from destructors.registry import registered_names
    >>> registered_names("rotation").is_satisfied_by("pca")
    True
    """
    return _RegisteredNames(kind)


class _RegisteredNames(StrOptions):
    def __init__(self, kind):
        self.kind = kind
        super().__init__(set())

    @property
    def options(self):
        return dict.fromkeys(layer_names(self.kind)).keys()  # a set, in registration order

    @options.setter
    def options(self, value):  # set once by StrOptions.__init__; the registry decides
        pass


def registered_classes():
    """Every registered class (the types a safe model file may contain).

    Returns
    -------
    classes : list of type
        Registered destructor classes, without repeats.

    Examples
    --------
    >>> from destructors import RBIG
    >>> from destructors.registry import registered_classes
    >>> RBIG in registered_classes()
    True
    """
    seen = []
    for entry in registered_layers():
        if entry.cls not in seen:
            seen.append(entry.cls)
    return seen
