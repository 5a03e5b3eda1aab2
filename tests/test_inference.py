"""The float engine: batches on several threads give what one thread gives."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from ethoedge.data import Normalizer
from ethoedge.inference import Classifier
from ethoedge.models import GRUStudent, StudentConfig


def _classifier(threads: int) -> Classifier:
    torch.manual_seed(0)
    model = GRUStudent(4, StudentConfig(hidden=16))
    norm = Normalizer((0.0, 0.0, 1.0), (0.3, 0.3, 0.3))
    return Classifier(model, norm, ("a", "b", "c", "d"), batch_size=64, threads=threads)


def test_threaded_batches_equal_one_thread_and_restore_torch_threads():
    X = np.random.default_rng(0).normal(size=(1000, 3, 50)).astype(np.float32)
    before = torch.get_num_threads()
    one = _classifier(1).decision_function(X)
    two = _classifier(2)
    z = two.decision_function(X)
    assert torch.get_num_threads() == before
    assert z.shape == (1000, 4)
    np.testing.assert_allclose(z, one, rtol=0, atol=1e-6)
    assert (z.argmax(1) == one.argmax(1)).all()
    # Batches keep their order: the last 64 windows alone give the last rows.
    np.testing.assert_allclose(two.decision_function(X[-64:]), z[-64:], rtol=0, atol=1e-6)
    # The threads are not pickled; a copy starts its own and computes the same.
    copy = pickle.loads(pickle.dumps(two))
    np.testing.assert_allclose(copy.decision_function(X), z, rtol=0, atol=1e-6)


FORK_SCRIPT = """
import os, sys, numpy as np, torch
from ethoedge.data import Normalizer
from ethoedge.inference import Classifier
from ethoedge.models import GRUStudent, StudentConfig
torch.manual_seed(0)
c = Classifier(GRUStudent(4, StudentConfig(hidden=8)), Normalizer((0, 0, 1), (1, 1, 1)),
               list("abcd"), batch_size=64, threads=2)
X = np.random.default_rng(0).normal(size=(600, 3, 50)).astype(np.float32)
z = c.decision_function(X)  # starts the engine's threads
pid = os.fork()
if pid == 0:
    os._exit(0 if np.allclose(c.decision_function(X), z, atol=1e-6) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_classifies_with_threads_of_its_own():
    """The child inherits the engine's thread pool without its threads; it must not wait on
    them forever."""
    subprocess.run([sys.executable, "-c", FORK_SCRIPT], check=True, timeout=120)


def test_gravity_turns_windows_as_recorded_like_turned_windows():
    """A classifier of a calibrated model given windows as recorded and their animal's mean
    acceleration computes what it computes on the windows turned as training turns them; a
    model without a gravity axis refuses the mean."""
    from ethoedge.data.calibrate import axis_vector, rotate, rotation_onto
    from ethoedge.errors import ConfigError

    torch.manual_seed(0)
    model = GRUStudent(4, StudentConfig(hidden=8))
    norm = Normalizer((0.0, 0.0, -1.0), (0.3, 0.3, 0.3))
    rng = np.random.default_rng(2)
    X = np.array([0.5, 0.3, -0.8])[None, :, None] + 0.2 * rng.normal(size=(40, 3, 50))
    X = X.astype(np.float32)
    g = X.mean(axis=(0, 2)).astype(np.float64)
    turned = rotate(X, rotation_onto(g, axis_vector("-z")))
    cal = Classifier(model, norm, list("abcd"), gravity_axis="-z")
    np.testing.assert_array_equal(cal.decision_function(X, g), cal.decision_function(turned))
    plain = Classifier(model, norm, list("abcd"))
    with pytest.raises(ConfigError, match="not trained on calibrated windows"):
        plain.decision_function(X, g)


def test_the_numpy_engine_turns_each_batch_as_all_windows_at_once():
    """The float engine on NumPy turns and normalises every batch on its own thread: the
    logits equal, bit for bit, those of the windows turned all at once beforehand."""
    from ethoedge.data.calibrate import axis_vector, rotate, rotation_onto
    from ethoedge.models.student_numpy import NumpyStudent

    torch.manual_seed(0)
    model = GRUStudent(4, StudentConfig(hidden=8))
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    student = NumpyStudent({"hidden": 8}, state, batch_size=64)
    norm = Normalizer((0.0, 0.0, -1.0), (0.3, 0.3, 0.3))
    rng = np.random.default_rng(3)
    X = np.array([0.4, -0.3, -0.8])[None, :, None] + 0.2 * rng.normal(size=(1000, 3, 50))
    X = X.astype(np.float32)
    g = X.mean(axis=(0, 2)).astype(np.float64)
    turned = rotate(X, rotation_onto(g, axis_vector("-z")))
    cal = Classifier(student, norm, list("abcd"), gravity_axis="-z", threads=2)
    np.testing.assert_array_equal(cal.decision_function(X, g), cal.decision_function(turned))


def test_windows_that_do_not_look_turned_warn_a_calibrated_model():
    """Windows as recorded given to a calibrated model without their animal's mean: a warning
    saying how far off the gravity axis they are; turned windows, or gravity given, none."""
    import warnings

    from ethoedge.data.calibrate import axis_vector, rotate, rotation_onto

    torch.manual_seed(0)
    cal = Classifier(GRUStudent(4, StudentConfig(hidden=4)), Normalizer((0, 0, -1), (1, 1, 1)),
                     list("abcd"), gravity_axis="-z")  # fmt: skip
    rng = np.random.default_rng(4)
    X = np.array([0.0, 0.8, -0.6])[None, :, None] + 0.1 * rng.normal(size=(30, 3, 50))
    X = X.astype(np.float32)  # mean about 53 degrees off -z
    g = X.mean(axis=(0, 2)).astype(np.float64)
    with pytest.warns(UserWarning, match=r"5\d degrees off the model's gravity axis \(-z\)"):
        cal.predict(X)
    turned = rotate(X, rotation_onto(g, axis_vector("-z")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cal.predict(turned)
        cal.predict(X, g)


def test_integer_engines_name_a_word_length_they_cannot_run(tmp_path):
    """--bits 7 on the c engine (no C export at 7 bits) or -3 anywhere: said as such, not a
    hint to quantize at a width that would fail again."""
    from ethoedge.errors import ConfigError
    from ethoedge.inference import Classifier

    with pytest.raises(ConfigError, match="the c engine runs W = 8 or 16"):
        Classifier.from_bundle(tmp_path, engine="c", bits=7)
    with pytest.raises(ConfigError, match=r"bits: word length must be an integer in 4\.\.16"):
        Classifier.from_bundle(tmp_path, engine="int", bits=-3)


@pytest.mark.parametrize("engine", ["float", "int", "c"])
def test_windows_a_model_cannot_take_are_named_on_every_engine(tmp_path, engine):
    """Two channels, another window length, a NaN, text: one ethoedge error on every engine
    (a NaN was classified as the first class by the float engine, a window of 40 samples was
    classified by all three)."""
    from ethoedge.errors import EthoedgeError
    from export.helpers import make_qmodel

    X = np.random.default_rng(1).normal(0, 0.3, size=(6, 3, 20)).astype(np.float32)
    if engine == "float":
        clf = _classifier(1)
        clf.n_samples = 20
    else:
        clf = Classifier(make_qmodel(8, hidden=8, n_classes=4), engine=engine, n_samples=20)
    nan = X.copy()
    nan[1, 2, 3] = np.nan
    cases = [(X[:, :2], "must be \\(n, 3, L\\)"), (X[:, :, :-3], "the model takes"),
             (nan, "window 1 holds nan \\(channel 2, sample 3\\)"),
             (np.full((2, 3, X.shape[2]), "a", dtype=object), "real numbers")]  # fmt: skip
    for bad, match in cases:
        with pytest.raises(EthoedgeError, match=match):
            clf.predict(bad)
    assert clf.predict(X[:0]).shape == (0,)


def test_an_integer_model_of_another_word_length_than_its_file_name_is_named(tmp_path):
    """quantized/w8.json holding a 16-bit model ran as the 8-bit model asked for."""
    from dataclasses import replace

    from ethoedge.errors import ConfigError
    from export.helpers import make_qmodel

    bundle = _saved_bundle(tmp_path)
    (bundle / "quantized").mkdir()
    q = make_qmodel(16, hidden=4, n_classes=4)
    replace(q, class_names=("a", "b", "c", "d")).save(bundle / "quantized" / "w8.json")
    want = "w8.json: holds a 16-bit model where its name says 8 bits"
    for engine in ("int", "c"):
        with pytest.raises(ConfigError, match=want):
            Classifier.from_bundle(bundle, engine=engine, bits=8)


def _saved_bundle(tmp_path):
    from ethoedge.bundle import Bundle, save_bundle
    from ethoedge.data import WindowConfig

    torch.manual_seed(0)
    norm = Normalizer((0.0, 0.0, 1.0), (0.3, 0.3, 0.3))
    b = Bundle(GRUStudent(4, StudentConfig(hidden=4)), norm, ("a", "b", "c", "d"),
               WindowConfig(), 10.0)  # fmt: skip
    return save_bundle(b, tmp_path / "model")


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("class_names", "abcd", "class_names must be a list of distinct names, got 'abcd'"),
        ("class_names", ["a", "a", "b", "c"], "class_names must be a list of distinct names"),
        ("class_names", [], "class_names must be a list of distinct names, got []"),
        ("rate_hz", float("inf"), "rate_hz must be a finite number > 0, got inf"),
        ("rate_hz", 0, "rate_hz must be a finite number > 0, got 0"),
        ("n_samples", "50", "n_samples must be an integer >= 1, got '50'"),
        ("n_channels", 0, "n_channels must be an integer >= 1, got 0"),
        ("normalizer", {"mean": [0, 0], "std": [1, 1, 1]}, "normalizer.mean must be a list of 3"),
        ("normalizer", {"mean": [0, 0, 0], "std": [0, 1, 1]}, "normalizer.std must be > 0"),
        ("window", {"calibrate": "magnetic"}, "window.calibrate must be one of"),
        ("student", {"hidden": "4"}, "student.hidden must be an integer, got '4'"),
        ("student", {"hidden": 4, "size": 4}, "unknown keys ['student.size']"),
        ("teacher", {"filters": "abc", "kernels": [3]}, "teacher.filters must be a list"),
        ("teacher", {"filters": [8], "kernels": [3], "depth": 2}, "unknown keys ['teacher.depth"),
        ("data", {"format": "xlsx"}, "data.format must be one of"),
        ("data", {"sheet": 1}, "unknown keys ['data.sheet']"),
        ("data", [], "data must be a mapping, got []"),
    ],
)
def test_a_bundle_json_with_bad_values_is_named_with_its_key(tmp_path, key, value, match):
    """Class names as one string, duplicated or empty, an infinite rate, a normaliser of
    another width: a traceback from deep inside classify (or answers under wrong names)."""
    import json

    from ethoedge.bundle import read_bundle_info
    from ethoedge.errors import ConfigError

    d = _saved_bundle(tmp_path)
    doc = json.loads((d / "bundle.json").read_text())
    doc[key] = value
    (d / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=re.escape(f"{d / 'bundle.json'}: {match}")):
        read_bundle_info(d)


def test_the_models_settings_are_checked_without_pytorch():
    """bundle.json's student and teacher entries are checked by the models' own settings
    classes, which import no PyTorch: reading a bundle (and the float engine) needs none."""
    import subprocess
    import sys

    code = (
        "import sys, ethoedge.bundle;"
        " from ethoedge.models import StudentConfig, TeacherConfig;"
        " StudentConfig(hidden=8); TeacherConfig(filters=(4,), kernels=(3,));"
        " print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_a_student_of_other_classes_than_bundle_json_is_named(tmp_path):
    """Five class names for a student of four classes: an IndexError in classify."""
    import json

    from ethoedge.errors import ConfigError

    d = _saved_bundle(tmp_path)
    doc = json.loads((d / "bundle.json").read_text())
    doc["class_names"] = ["a", "b", "c", "d", "e"]
    (d / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"student\.npz: not the model bundle\.json describes"):
        Classifier.from_bundle(d, device="cpu")


def test_a_student_npz_of_text_is_named_when_loaded(tmp_path):
    """Text arrays in student.npz: a TypeError from PyTorch in ``quantize``."""
    from ethoedge.bundle import load_bundle
    from ethoedge.errors import ConfigError

    d = _saved_bundle(tmp_path)
    names = list(np.load(d / "student.npz"))
    np.savez(d / "student.npz", **{k: np.array(["x"]) for k in names})
    with pytest.raises(ConfigError, match=r"student\.npz: not the student bundle\.json describes"):
        load_bundle(d)
