"""Model files: a safe format that loads without running code, and trusted pickles.

The default format (``.destructor``, :data:`FORMAT_VERSION` 1) is a zip
archive of

- ``manifest.json``: a JSON object with ``"format": "destructors-model"``,
  ``"format_version": 1``, ``"library_version"`` (of the writer),
  ``"columns"`` (the column names the model was fitted on, or null) and
  ``"model"``, the estimator tree described below;
- ``arrays/<n>.npy``: NumPy arrays in ``.npy`` format, never object
  arrays, read with ``allow_pickle=False``.

Every value of the tree is JSON: ``null``, ``true``/``false``, a string, an
integer, a finite float (written as the shortest text that reads back to
the same bits) or a list (a Python list), or an object with one key:

- ``{"$float": "nan" | "inf" | "-inf"}``: a non-finite float;
- ``{"$tuple": [...]}`` and ``{"$dict": {...}}`` (string keys): containers;
- ``{"$array": "arrays/<n>.npy"}``: an array; ``{"$scalar": "arrays/<n>.npy"}``:
  a NumPy scalar, saved as a 0-d array;
- ``{"$estimator": {"kind": K, "name": N}, "state": {...}}``: an
  estimator of the class registered as ``(K, N)`` in
  :mod:`destructors.registry`, whose ``__getstate__()`` is ``state``.

Loading rebuilds each estimator with ``cls.__new__(cls)`` and
``__setstate__(state)``, and refuses any class that is not registered, so
no code named by the file runs. Pickles (joblib) are read only when asked
(``trust_pickle=True``, ``--trust-pickle``), since unpickling runs code
the file names.
"""

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from .io import atomic_output

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PICKLE_SUFFIXES",
    "SUFFIX",
    "ModelFile",
    "UntrustedPickleError",
    "load_model",
    "save_model",
]

FORMAT_NAME = "destructors-model"
FORMAT_VERSION = 1
#: The file extension of the safe format.
SUFFIX = ".destructor"
#: Names ending in one of these are saved as joblib pickles.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")

_MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 1 << 30
# First bytes of a pickle (protocol 2 and later) and of joblib's compressed pickles.
_PICKLE_MAGIC = (
    b"\x80", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda",
    b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00", b"\x04\x22\x4d\x18",
)  # fmt: skip
_SAFE_TYPES = (
    "None, bool, int, float, str, NumPy scalars and arrays (not of object dtype), "
    "lists, tuples, dicts with str keys and registered destructors"
)


class UntrustedPickleError(ValueError):
    """A pickle model file, not loaded because loading it would run code from it.

    Examples
    --------
    >>> from destructors.persistence import UntrustedPickleError
    >>> issubclass(UntrustedPickleError, ValueError)
    True
    """


@dataclass(frozen=True)
class ModelFile:
    """What :func:`load_model` read.

    Attributes
    ----------
    model : BaseDestructor
        The estimator.
    columns : list of str or None
        Names of the columns the model was fitted on, if saved.
    format_version : int or None
        The safe format's version, or ``None`` for a (trusted) pickle.

    Examples
    --------
    >>> from destructors import PCARotation
    >>> from destructors.persistence import ModelFile
    >>> ModelFile(PCARotation(), ["x"], 1).columns
    ['x']
    """

    model: object
    columns: list | None
    format_version: int | None


# -- encoding ------------------------------------------------------------------


def _registry_key(cls):
    from .registry import registered_layers

    for entry in registered_layers():
        if entry.cls is cls:
            return entry.kind, entry.name
    return None


def _describe(value):
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


class _Encoder:
    def __init__(self):
        self.arrays = {}  # entry name -> array
        self._by_id = {}  # id(array) -> entry name, so shared arrays stay shared
        self._active = set()

    def _entry(self, array):
        name = self._by_id.get(id(array))
        if name is None:
            name = f"arrays/{len(self.arrays)}.npy"
            self.arrays[name] = array
            self._by_id[id(array)] = name
        return name

    def encode(self, value, where):
        if value is None or isinstance(value, bool | str) and not isinstance(value, np.generic):
            return value
        if isinstance(value, np.generic):
            if value.dtype.hasobject:
                raise self._refuse(value, where)
            return {"$scalar": self._entry(np.asarray(value))}
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            value = float(value)
            if math.isfinite(value):
                return value
            return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if type(value) is np.ndarray:
            if value.dtype.hasobject:
                raise ValueError(
                    f"{where}: an array of object dtype cannot be saved in a safe model file; "
                    "store numbers (or save a trusted pickle: a .joblib file name)."
                )
            return {"$array": self._entry(value)}
        if isinstance(value, list | tuple | dict) or hasattr(value, "__getstate__"):
            if id(value) in self._active:
                raise ValueError(f"{where}: refers to itself; a model file holds a tree.")
            self._active.add(id(value))
            try:
                return self._encode_container(value, where)
            finally:
                self._active.discard(id(value))
        raise self._refuse(value, where)

    def _encode_container(self, value, where):
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {"$tuple": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) is dict:
            out = {}
            for key, v in value.items():
                if not isinstance(key, str):
                    raise ValueError(
                        f"{where}: a dict key {key!r} is not a str; safe model files hold "
                        "dicts with str keys only."
                    )
                out[key] = self.encode(v, f"{where}[{key!r}]")
            return {"$dict": out}
        if hasattr(value, "get_params"):
            return self.encode_estimator(value, where)
        raise self._refuse(value, where)

    def encode_estimator(self, obj, where):
        key = _registry_key(type(obj))
        if key is None:
            raise ValueError(
                f"{where}: class {_describe(obj)} is not registered, so a safe model file "
                "cannot hold it; register it with destructors.registry.register_layer(name, "
                "kind), or save a trusted pickle (a .joblib file name)."
            )
        state = obj.__getstate__()
        if not isinstance(state, dict):
            raise ValueError(f"{where}: {_describe(obj)}.__getstate__() is not a dict.")
        encoded = {}
        for name, v in state.items():
            if not isinstance(name, str):
                raise ValueError(f"{where}: state key {name!r} is not a str.")
            encoded[name] = self.encode(v, f"{where}.{name}")
        return {"$estimator": {"kind": key[0], "name": key[1]}, "state": encoded}

    @staticmethod
    def _refuse(value, where):
        what = "set it to an int seed or None before fitting" if isinstance(
            value, np.random.RandomState | np.random.Generator
        ) else "save a trusted pickle instead (a .joblib file name)"
        return ValueError(
            f"{where}: a {_describe(value)} cannot be saved in a safe model file, which holds "
            f"only {_SAFE_TYPES}; {what}."
        )


def _safe_bytes(model, columns):
    """The archive's bytes: everything is encoded before a file is opened."""
    from . import __version__

    if columns is not None:
        columns = list(columns)
        if not all(isinstance(c, str) for c in columns):
            raise ValueError("columns must be a list of str or None.")
    encoder = _Encoder()
    tree = encoder.encode_estimator(model, type(model).__name__)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "columns": columns,
        "model": tree,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        text = json.dumps(manifest, allow_nan=False, indent=1)
        archive.writestr(_MANIFEST, text, compress_type=zipfile.ZIP_DEFLATED)
        for name, array in encoder.arrays.items():
            entry = io.BytesIO()
            np.save(entry, array, allow_pickle=False)
            archive.writestr(name, entry.getvalue(), compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def _pickle_format(path):
    return os.fspath(path).lower().endswith(PICKLE_SUFFIXES)


def save_model(path, model, columns=None):
    """Save a model; a name ending in ``.joblib`` (``.pkl``, ``.pickle``) makes a pickle.

    Any other name gets the safe format (see the module docstring; the
    usual extension is ``.destructor``), which :func:`load_model` reads
    without running code. Its classes must be registered
    (:func:`destructors.registry.registered_classes`) and their state plain
    data; anything else is refused with a ValueError naming the attribute,
    before the file is touched. The file is written atomically: a failure
    leaves any previous file as it was.

    Parameters
    ----------
    path : str or path-like
        Where to write.
    model : BaseDestructor
        Usually fitted; any registered estimator.
    columns : list of str or None, default=None
        Names of the columns the model was fitted on.

    Raises
    ------
    ValueError
        When the model holds something the safe format cannot (an
        unregistered class, a ``RandomState`` as ``random_state``, ...).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> from destructors.persistence import load_model, save_model
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "rotation.destructor")
    >>> save_model(path, PCARotation().fit(X), columns=["a", "b"])
    >>> loaded = load_model(path)
    >>> loaded.columns, loaded.format_version
    (['a', 'b'], 1)
    >>> from destructors import RandomRotation
    >>> save_model(path, RandomRotation(random_state=np.random.RandomState(0)))
    Traceback (most recent call last):
    ...
    ValueError: RandomRotation.random_state: a numpy.random.mtrand.RandomState cannot be saved ...
    """
    if _pickle_format(path):
        _save_pickle(path, model, columns)
        return
    data = _safe_bytes(model, columns)
    with atomic_output(path, "wb") as f:
        f.write(data)


def _save_pickle(path, model, columns):
    import joblib

    from . import __version__

    # The layout of the command line's pickles since version 0.1.
    payload = {"format": FORMAT_NAME, "version": __version__, "model": model, "columns": columns}
    with atomic_output(path, "wb") as f:
        joblib.dump(payload, f)


# -- decoding ------------------------------------------------------------------


class _Decoder:
    def __init__(self, archive, source):
        self.archive, self.source = archive, source
        self.names = set(archive.namelist())
        self._arrays = {}

    def _array(self, name):
        if not isinstance(name, str) or name not in self.names or name == _MANIFEST:
            raise ValueError(f"{self.source}: the manifest names a missing array {name!r}.")
        if name not in self._arrays:
            try:
                with self.archive.open(name) as f:
                    self._arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
            except ValueError as exc:
                raise ValueError(f"{self.source}: unreadable array {name!r} ({exc}).") from None
        return self._arrays[name]

    def decode(self, node, where):
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict) or not node:
            raise ValueError(f"{self.source}: {where}: unreadable value {node!r:.60}.")
        if "$estimator" in node:
            return self.decode_estimator(node, where)
        if len(node) != 1:
            raise ValueError(f"{self.source}: {where}: unknown value tag {sorted(node)!r:.60}.")
        ((tag, body),) = node.items()
        if tag == "$float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "$tuple" and isinstance(body, list):
            return tuple(self.decode(v, f"{where}[{i}]") for i, v in enumerate(body))
        if tag == "$dict" and isinstance(body, dict):
            return {k: self.decode(v, f"{where}[{k!r}]") for k, v in body.items()}
        if tag == "$array":
            return self._array(body)
        if tag == "$scalar":
            array = self._array(body)
            if array.ndim != 0:
                raise ValueError(f"{self.source}: {where}: a scalar entry is not 0-d.")
            return array[()]
        raise ValueError(f"{self.source}: {where}: unknown value tag {tag!r:.60}.")

    def decode_estimator(self, node, where):
        from .registry import get_layer, registered_classes

        key, state = node.get("$estimator"), node.get("state")
        if (
            set(node) != {"$estimator", "state"}
            or not isinstance(key, dict)
            or not isinstance(state, dict)
            or not isinstance(key.get("kind"), str)
            or not isinstance(key.get("name"), str)
        ):
            raise ValueError(f"{self.source}: {where}: a malformed estimator entry.")
        kind, name = key["kind"], key["name"]
        try:
            cls = get_layer(name, kind)
        except ValueError:
            cls = None
        if cls is None or cls not in registered_classes():
            raise ValueError(
                f"{self.source}: {where} is a {kind} layer {name!r}, which is not registered "
                "in destructors.registry; refusing to load it (import the module that "
                "registers it first)."
            )
        values = {k: self.decode(v, f"{where}.{k}") for k, v in state.items()}
        obj = cls.__new__(cls)
        obj.__setstate__(values)
        return obj


def _looks_like_pickle(path):
    with open(path, "rb") as f:
        head = f.read(8)
    return head.startswith(_PICKLE_MAGIC)


def _load_safe(path):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path}: not a readable model file ({exc}).") from None
    with archive:
        try:
            info = archive.getinfo(_MANIFEST)
        except KeyError:
            raise ValueError(
                f"{path}: a zip archive without {_MANIFEST}; not a model file."
            ) from None
        if info.file_size > _MAX_MANIFEST_BYTES:
            raise ValueError(f"{path}: {_MANIFEST} is implausibly large.")
        try:
            manifest = json.loads(archive.read(_MANIFEST).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: unreadable {_MANIFEST} ({exc}).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ValueError(f"{path}: not a {FORMAT_NAME} file (its manifest has no "
                             f"\"format\": \"{FORMAT_NAME}\").")
        version = manifest.get("format_version")
        if "format_version" not in manifest:
            raise ValueError(f"{path}: the manifest has no format_version; not a model file "
                             "this version of destructors can read.")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"{path}: invalid format_version {version!r}.")
        if version != FORMAT_VERSION:
            writer = manifest.get("library_version", "a newer version")
            raise ValueError(
                f"{path}: format_version {version} (written by destructors {writer}); this "
                f"version reads format_version {FORMAT_VERSION}; upgrade destructors."
            )
        columns = manifest.get("columns")
        if columns is not None and not (
            isinstance(columns, list) and all(isinstance(c, str) for c in columns)
        ):
            raise ValueError(f"{path}: \"columns\" must be a list of strings or null.")
        tree = manifest.get("model")
        if not isinstance(tree, dict) or "$estimator" not in tree:
            raise ValueError(f"{path}: the manifest holds no model.")
        try:
            model = _Decoder(archive, path).decode_estimator(tree, "model")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"{path}: a damaged array entry ({exc}).") from None
    return ModelFile(model, columns, version)


def _load_pickle(path):
    import joblib

    try:
        payload = joblib.load(path)
    except Exception as exc:  # unpickling can raise almost anything
        raise ValueError(
            f"{path}: not a model file written by destructors "
            f"({type(exc).__name__}: {' '.join(str(exc).split())})."
        ) from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT_NAME:
        return ModelFile(payload.get("model"), payload.get("columns"), None)
    return ModelFile(payload, None, None)  # a bare estimator saved with joblib.dump


def load_model(path, *, trust_pickle=False):
    """Load a model file written by :func:`save_model` or ``destructors fit``.

    A safe-format file (a zip archive, see the module docstring) is read
    without running code: only registered classes are rebuilt, from plain
    data. Anything else is taken for a pickle, which is read (with joblib)
    only when ``trust_pickle=True``, because unpickling runs whatever code
    the file names: load only pickles you trust. A trusted pickle may hold
    the command line's dict (``{"model": ..., "columns": ...}``) or a bare
    estimator.

    Parameters
    ----------
    path : str or path-like
        The file.
    trust_pickle : bool, default=False
        Also read pickles (joblib) -- this runs code from the file.

    Returns
    -------
    model_file : ModelFile
        The model, its column names and the format version.

    Raises
    ------
    UntrustedPickleError
        A pickle, with ``trust_pickle=False``; nothing in it was run.
    ValueError
        A damaged file, an unknown or missing format version, or a class
        that is not registered.
    FileNotFoundError
        No such file.

    Examples
    --------
    >>> import os, tempfile
    >>> import joblib
    >>> from destructors import MarginalGaussianizer
    >>> from destructors.persistence import load_model
    >>> path = os.path.join(tempfile.mkdtemp(), "model.joblib")
    >>> _ = joblib.dump(MarginalGaussianizer(), path)
    >>> load_model(path)
    Traceback (most recent call last):
    ...
    destructors.persistence.UntrustedPickleError: ...model.joblib: a pickle ...
    >>> load_model(path, trust_pickle=True).model
    MarginalGaussianizer()
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file.")
    if zipfile.is_zipfile(path):
        return _load_safe(path)
    if not trust_pickle:
        if _looks_like_pickle(path):
            raise UntrustedPickleError(
                f"{path}: a pickle (joblib) file, not a safe model file; loading a pickle runs "
                "code from it, so it is read only with trust_pickle=True: use that only for "
                "files you trust."
            )
        raise ValueError(f"{path}: not a model file written by destructors (neither a "
                         f"{SUFFIX} archive nor a pickle).")
    return _load_pickle(path)
