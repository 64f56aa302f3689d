"""Tests of model files (``destructors.persistence``)."""

import json
import math
import os
import pickle
import zipfile

import joblib
import numpy as np
import pytest

from destructors import (
    RBIG,
    CompositeDestructor,
    DeepDestructor,
    MarginalGaussianizer,
    PCARotation,
    RandomRotation,
)
from destructors.persistence import (
    FORMAT_VERSION,
    ModelFile,
    UntrustedPickleError,
    load_model,
    save_model,
)


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return np.column_stack([x, x**2 + 0.3 * rng.normal(size=n), rng.gamma(2.0, size=n)])


MODELS = {
    "rbig": lambda: RBIG(random_state=0),
    "rbig-pca": lambda: RBIG(rotation="pca", random_state=0),
    "composite": lambda: CompositeDestructor([MarginalGaussianizer(), PCARotation()]),
    "marginal": lambda: MarginalGaussianizer(),
    "deep": lambda: DeepDestructor(
        CompositeDestructor([MarginalGaussianizer(), RandomRotation()]),
        max_layers=6,
        random_state=0,
    ),
}


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.dtype, a.shape, a.tobytes()


@pytest.fixture(scope="module")
def fitted():
    X = _data()
    return X, {name: make().fit(X) for name, make in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_is_bit_identical(name, fitted, tmp_path):
    X, models = fitted
    model = models[name]
    path = tmp_path / "model.destructor"
    save_model(path, model, columns=["a", "b", "c"])
    with zipfile.ZipFile(path) as archive:  # the documented layout
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert names[0] == "manifest.json"
    assert all(n.startswith("arrays/") and n.endswith(".npy") for n in names[1:])
    assert manifest["format"] == "destructors-model"
    assert manifest["format_version"] == FORMAT_VERSION == 1
    loaded = load_model(path)
    assert isinstance(loaded, ModelFile)
    assert loaded.columns == ["a", "b", "c"] and loaded.format_version == 1
    copy = loaded.model
    assert type(copy) is type(model)
    assert copy.get_params(deep=False).keys() == model.get_params(deep=False).keys()
    Z = model.transform(X)
    for method, data in [
        ("score_samples", X),
        ("transform", X),
        ("inverse_transform", Z),
    ]:
        assert _bits(getattr(copy, method)(data)) == _bits(getattr(model, method)(data)), method
    assert _bits(copy.sample(50, random_state=0)) == _bits(model.sample(50, random_state=0))


def test_loaded_model_can_be_saved_again_identically(fitted, tmp_path):
    _, models = fitted
    first, second = tmp_path / "a.destructor", tmp_path / "b.destructor"
    save_model(first, models["rbig"])
    save_model(second, load_model(first).model)
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())


def test_plain_values_round_trip_exactly(tmp_path):
    rotation = PCARotation().fit(_data(50))
    values = {
        "floats": [0.1, -0.0, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan],
        "scalars": (np.float32(1.5), np.int16(-3), np.bool_(True), np.float64(2.0) / 3),
        "nested": {"a": [1, "x", None, True], "b": (2**70, "")},
        "array": np.arange(6, dtype=np.int8).reshape(2, 3),
        "fortran": np.asfortranarray(np.eye(3, dtype=np.float32)),
    }
    rotation.extra_ = values
    path = tmp_path / "values.destructor"
    save_model(path, rotation)
    got = load_model(path).model.extra_
    floats = got["floats"]
    assert [type(v) for v in floats] == [float] * 7
    assert [v.hex() for v in floats[:6]] == [v.hex() for v in values["floats"][:6]]
    assert math.isnan(floats[6])
    assert math.copysign(1.0, floats[1]) == -1.0
    assert isinstance(got["scalars"], tuple)
    for a, b in zip(got["scalars"], values["scalars"], strict=True):
        assert type(a) is type(b) and a.tobytes() == b.tobytes()
    assert got["nested"] == values["nested"] and isinstance(got["nested"]["b"], tuple)
    for key in ("array", "fortran"):
        np.testing.assert_array_equal(got[key], values[key])
        assert got[key].dtype == values[key].dtype


def test_shared_arrays_stay_shared(tmp_path):
    rotation = PCARotation().fit(_data(50))
    shared = np.arange(4.0)
    rotation.pair_ = (shared, shared)
    path = tmp_path / "shared.destructor"
    save_model(path, rotation)
    a, b = load_model(path).model.pair_
    assert a is b


def _refused(tmp_path, model, *fragments):
    path = tmp_path / "model.destructor"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError) as info:
        save_model(path, model)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert path.read_bytes() == b"previous"  # nothing written, no temporary file left
    assert sorted(os.listdir(tmp_path)) == ["model.destructor"]


def test_save_refuses_a_random_state_instance(tmp_path):
    model = RandomRotation(random_state=np.random.RandomState(0))
    _refused(tmp_path, model, "RandomRotation.random_state", "RandomState", "int seed")


def test_save_refuses_an_unregistered_class_naming_the_attribute(tmp_path):
    class Unregistered(PCARotation):
        pass

    model = CompositeDestructor([MarginalGaussianizer(), Unregistered()])
    _refused(tmp_path, model, "CompositeDestructor.layers[1]", "not registered", "register_layer")
    _refused(tmp_path, Unregistered(), "Unregistered", "not registered")


def test_save_refuses_arbitrary_objects_and_object_arrays(tmp_path):
    rotation = PCARotation()
    rotation.callback_ = print
    _refused(tmp_path, rotation, "PCARotation.callback_", "builtin_function_or_method")
    rotation = PCARotation()
    rotation.table_ = {"k": np.array([object()])}
    _refused(tmp_path, rotation, "PCARotation.table_['k']", "object dtype")
    rotation = PCARotation()
    rotation.table_ = {1: 2}
    _refused(tmp_path, rotation, "PCARotation.table_", "not a str")
    rotation = PCARotation()
    rotation.loop_ = []
    rotation.loop_.append(rotation.loop_)
    _refused(tmp_path, rotation, "PCARotation.loop_[0]", "refers to itself")


# -- refusing files ---------------------------------------------------------------


def _rewrite(path, edit):
    """Rewrite the manifest of a model file with ``edit(manifest)``."""
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(entries["manifest.json"])
    edit(manifest)
    entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.destructor"
    save_model(path, MarginalGaussianizer().fit(_data(100)), columns=["a", "b", "c"])
    return path


def _set(key, value):
    def edit(manifest):
        manifest[key] = value

    return edit


def _rename(kind, name):
    def edit(manifest):
        manifest["model"]["$estimator"] = {"kind": kind, "name": name}

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_rename("model", "os.system"), "not registered"),
        (_rename("marginal", "subprocess.Popen"), "not registered"),
        (_rename("rotation", "gaussianizer"), "not registered"),
        (lambda m: m.pop("format_version"), "no format_version"),
        (_set("format_version", 2), "format_version 2"),
        (_set("format_version", "1"), "invalid format_version"),
        (_set("format_version", True), "invalid format_version"),
        (_set("format_version", 0), "invalid format_version"),
        (_set("format", "something-else"), "not a destructors-model file"),
        (_set("columns", [1, 2]), "columns"),
        (_set("model", {"$array": "arrays/0.npy"}), "holds no model"),
    ],
)
def test_load_refuses_bad_files(saved, edit, message):
    _rewrite(saved, edit)
    with pytest.raises(ValueError, match=message):
        load_model(saved)


def test_load_refuses_a_missing_array_and_an_object_array(saved, tmp_path):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with zipfile.ZipFile(saved) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    target = sorted(n for n in entries if n.startswith("arrays/"))[0]
    with open(tmp_path / "evil.npy", "wb") as f:
        np.save(f, np.array([Payload()], dtype=object), allow_pickle=True)
    entries[target] = (tmp_path / "evil.npy").read_bytes()
    with zipfile.ZipFile(saved, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="unreadable array"):
        load_model(saved)
    assert not marker.exists()

    def drop(manifest):
        manifest["model"]["state"]["knots_x_"] = {"$array": "arrays/999.npy"}

    _rewrite(saved, drop)
    with pytest.raises(ValueError, match="missing array"):
        load_model(saved)


def test_pickles_load_only_when_trusted(tmp_path):
    model = MarginalGaussianizer().fit(_data(100))
    legacy = tmp_path / "legacy.joblib"  # the layout of version 0.1's command line
    joblib.dump({"format": "destructors-model", "version": "0.1.0", "model": model,
                 "columns": ["a", "b", "c"]}, legacy)  # fmt: skip
    bare = tmp_path / "bare.pkl"
    bare.write_bytes(pickle.dumps(model))
    for path in (legacy, bare):
        with pytest.raises(UntrustedPickleError, match="trust_pickle=True"):
            load_model(path)
    assert load_model(legacy, trust_pickle=True).columns == ["a", "b", "c"]
    loaded = load_model(bare, trust_pickle=True)
    assert loaded.columns is None and loaded.format_version is None
    np.testing.assert_array_equal(loaded.model.knots_x_, model.knots_x_)


def test_a_crafted_pickle_is_not_run_without_trust(tmp_path):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.destructor"  # the name does not matter, the content does
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UntrustedPickleError):
        load_model(path)
    assert not marker.exists()


def test_save_model_picks_a_pickle_by_suffix(tmp_path):
    model = MarginalGaussianizer().fit(_data(100))
    save_model(tmp_path / "m.joblib", model, ["a", "b", "c"])
    assert not zipfile.is_zipfile(tmp_path / "m.joblib")
    assert load_model(tmp_path / "m.joblib", trust_pickle=True).columns == ["a", "b", "c"]


def test_garbage_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.destructor"
    garbage.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a model file"):
        load_model(garbage)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.destructor")
    empty_zip = tmp_path / "empty.destructor"
    with zipfile.ZipFile(empty_zip, "w"):
        pass
    with pytest.raises(ValueError, match="without manifest.json"):
        load_model(empty_zip)


def _registered():
    from destructors.registry import registered_classes

    return registered_classes()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", _registered(), ids=lambda c: c.__name__)
def test_every_registered_class_round_trips(cls, tmp_path):
    """A new layer type must keep plain-data state, or say how to save it."""
    import inspect

    X = _data(300)
    required = [
        p.name for p in inspect.signature(cls.__init__).parameters.values()
        if p.default is inspect.Parameter.empty and p.name != "self"
    ]  # fmt: skip
    if required == ["layers"]:  # a composite: of a marginal and a rotation
        base = cls([MarginalGaussianizer(), PCARotation()])
    elif required:
        pytest.skip(f"{cls.__name__} needs {required}")
    else:
        base = cls()
    names = base.get_params(deep=False)
    params = {k: v for k, v in {"random_state": 0, "max_layers": 3}.items() if k in names}
    model = base.set_params(**params).fit(X)
    path = tmp_path / "m.destructor"
    save_model(path, model)
    copy = load_model(path).model
    assert _bits(copy.score_samples(X)) == _bits(model.score_samples(X))
    assert _bits(copy.transform(X)) == _bits(model.transform(X))
