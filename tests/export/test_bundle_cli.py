"""`ethoedge export-c` / `verify-c` on a bundle over the bundled default cattle data, and the
emulated Cortex-M4 and Cortex-M3 against the host on real windows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ethoedge.cli import main
from ethoedge.export.verify import run_c, verify_c
from ethoedge.quantize.qmodel import QuantizedStudent
from ethoedge.quantize.reference import quantize_input, reference_logits_batched

from .helpers import requires_arm, requires_gcc

pytestmark = requires_gcc


@pytest.fixture(scope="module")
def exported(tiny_bundle, tmp_path_factory):
    bundle_dir = tiny_bundle[0]
    out = {}
    for bits in (8, 16):
        d = tmp_path_factory.mktemp(f"c{bits}")
        assert main(["export-c", str(bundle_dir), "--bits", str(bits), "--out", str(d)]) == 0
        out[bits] = d
    return out


@pytest.mark.parametrize("bits", [8, 16])
def test_export_writes_module_and_metadata(exported, tiny_bundle, bits):
    d = exported[bits]
    names = {p.name for p in d.iterdir()}
    assert names == {"ethoedge_model.h", "ethoedge_model.c", "main.c", "export.json",
                     "quantized.json", "ethoedge_kernels.h", "ethoedge_kernels.c"}  # fmt: skip
    meta = json.loads((d / "export.json").read_text())
    q = QuantizedStudent.load(d / "quantized.json")
    assert meta["word_bits"] == bits == q.word_bits
    assert meta["model_checksum"] == q.checksum()
    assert meta["n_samples"] == tiny_bundle[1].n_samples
    assert Path(meta["bundle"]) == tiny_bundle[0].resolve()


def test_verify_c_cli_every_bundled_window(exported, tiny_bundle, capsys):
    """`ethoedge verify-c DIR` (W=8): host C == integer reference, window and streaming API,
    on every window of the bundled data, windowed from the CSV as the bundle was trained."""
    n, L = len(tiny_bundle[1]), tiny_bundle[1].n_samples
    assert main(["verify-c", str(exported[8])]) == 0
    out = capsys.readouterr().out
    assert f"host (window): {n}/{n} windows identical" in out
    k = 2 * n - 1  # the windows joined into one stream, a window every L/2 samples
    assert f"host (streaming, hop {L // 2}): {k}/{k} windows identical" in out


def test_w16_every_bundled_window(exported, tiny_bundle):
    """The same at W=16 through the Python API (the windows are already in memory)."""
    q = QuantizedStudent.load(exported[16] / "quantized.json")
    X = quantize_input(tiny_bundle[1].X, q.in_frac)
    res = verify_c(exported[16], X, reference_logits_batched(q, X))
    assert res.ok and res.n_windows == len(X), res.summary()


def test_two_models_in_one_folder_are_each_verified(tiny_bundle, tmp_path, capsys):
    """Several models go into one folder (one firmware) with different prefixes; export.json
    describes the latest, and an earlier model keeps its metadata under its prefix's names:
    `verify-c --prefix` checks either; a prefix not exported there is one clear line."""
    bundle, d = str(tiny_bundle[0]), tmp_path / "fw"
    n = len(tiny_bundle[1])
    for prefix, bits in (("walk8", "8"), ("rest16", "16")):
        assert main(["export-c", bundle, "--bits", bits, "--out", str(d), "--prefix", prefix]) == 0
    names = {p.name for p in d.iterdir()}
    assert {"export.json", "quantized.json", "walk8.export.json", "walk8.quantized.json",
            "walk8.c", "rest16.c"} <= names and "rest16.export.json" not in names  # fmt: skip
    assert json.loads((d / "export.json").read_text())["config"]["prefix"] == "rest16"
    assert json.loads((d / "walk8.export.json").read_text())["word_bits"] == 8
    capsys.readouterr()
    for prefix in ("walk8", "rest16", None):
        args = ["verify-c", str(d), "--max-windows", "40"] + (
            ["--prefix", prefix] if prefix else []
        )
        assert main(args) == 0, prefix
        assert "host (window): 40/40 windows identical" in capsys.readouterr().out, prefix
    assert main(["verify-c", str(d), "--prefix", "graze"]) != 0
    err = capsys.readouterr().err
    assert (
        "no model with prefix 'graze'" in err and "rest16, walk8" in err and "\n" not in err.strip()
    )
    # walk8 exported again (now at W=16): it is the latest, its kept copy is not stale, and
    # rest16 keeps its own
    assert main(["export-c", bundle, "--bits", "16", "--out", str(d), "--prefix", "walk8"]) == 0
    assert (d / "walk8.export.json").read_text() == (d / "export.json").read_text()
    assert json.loads((d / "rest16.export.json").read_text())["config"]["prefix"] == "rest16"
    assert main(["verify-c", str(d), "--prefix", "rest16", "--max-windows", "40"]) == 0
    assert n > 40


def test_missing_quantized_model_says_how_to_make_it(tiny_bundle, tmp_path, capsys):
    bundle_dir = tmp_path / "unquantized"
    bundle_dir.mkdir()
    for name in ("bundle.json", "student.npz"):
        (bundle_dir / name).write_bytes((tiny_bundle[0] / name).read_bytes())
    code = main(["export-c", str(bundle_dir), "--bits", "16", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "ethoedge quantize" in err and "--bits 16" in err
    assert not (tmp_path / "x").exists()


def test_unsupported_width_and_bad_prefix_fail_cleanly(tiny_bundle, tmp_path, capsys):
    b = str(tiny_bundle[0])
    assert main(["export-c", b, "--bits", "12", "--out", str(tmp_path / "a")]) == 2
    assert main(["export-c", b, "--out", str(tmp_path / "b"), "--prefix", "9x"]) == 2
    err = capsys.readouterr().err
    assert "supported: 8, 16" in err and "not a C identifier" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return " ".join(err.split())


def test_export_c_broken_bundle_is_one_line_and_writes_nothing(tiny_bundle, tmp_path, capsys):
    import json
    import shutil

    def fractional_weight(text: bytes) -> bytes:  # a weight of 1.5: once silently truncated
        d = json.loads(text)
        d["weights"]["out.bias"]["values"][0] = 1.5
        return json.dumps(d).encode()

    broken = [
        ("bundle.json", b"{", "bundle.json is not valid JSON"),
        ("quantized/w8.json", b'{"word_bits": 8}', "w8.json: not a readable integer model (no"),
        ("quantized/w8.json", fractional_weight, "(a value 1.5 that is not an integer)"),
    ]
    for k, (name, content, text) in enumerate(broken):
        b = tmp_path / f"bundle_{k}"
        shutil.copytree(tiny_bundle[0], b)
        f = b / name
        f.write_bytes(content(f.read_bytes()) if callable(content) else content)
        out = tmp_path / f"c_{k}"
        assert main(["export-c", str(b), "--bits", "8", "--out", str(out)]) == 2
        assert text in _one_line_error(capsys)
        assert not out.exists()


def test_export_c_to_an_unwritable_place_is_one_line(tiny_bundle, tmp_path, capsys):
    b = str(tiny_bundle[0])
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    (tmp_path / "fw" / "main.c").mkdir(parents=True)  # a folder where a file of the export goes
    long = tmp_path / "new" / "deeper" / ("x" * 300)
    for out, why in (
        (notes, "cannot write here: it is a file; give a folder"),
        (notes / "fw", f"cannot write here: {notes} is a file, not a folder"),
        (
            tmp_path / "fw",
            f"cannot write here: {tmp_path / 'fw' / 'main.c'} is a folder, not a file",
        ),
        (long, "cannot write here: File name too long"),
    ):
        assert main(["export-c", b, "--out", str(out)]) == 2
        assert f"{out}: {why}" in _one_line_error(capsys)
    assert [p.name for p in (tmp_path / "fw").iterdir()] == ["main.c"]  # nothing else written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw", "notes.txt"]


def _edit_export_meta(d: Path, key: str, value: object) -> None:
    """Set ``key`` of ``d/export.json`` to ``value`` (None: remove the key)."""
    meta = json.loads((d / "export.json").read_text())
    if value is None:
        del meta[key]
    else:
        meta[key] = value
    (d / "export.json").write_text(json.dumps(meta))


def test_verify_c_broken_export_is_one_line(exported, tmp_path, capsys):
    import shutil

    def broken(name: str, edit) -> Path:
        d = tmp_path / name
        shutil.copytree(exported[8], d)
        edit(d)
        return d

    def meta_edit(key: str, value: object = None):
        return lambda d: _edit_export_meta(d, key, value)

    gone = str(tmp_path / "gone")
    cases = [
        (lambda d: (d / "export.json").write_text("{"), "export.json: not readable export"),
        (meta_edit("model_checksum"), "export.json: not the description of an export (no"),
        (lambda d: (d / "quantized.json").unlink(), "quantized.json: not found"),
        (lambda d: (d / "quantized.json").write_text("["), "quantized.json: not a readable"),
        (meta_edit("bundle", gone), f"export.json: the model bundle it was exported from is no"
                                    f" longer at {gone}"),
        (lambda d: (d / "ethoedge_model.c").write_text("int x = ;\n"), "gcc failed (exit 1): "),
        (lambda d: (d / "ethoedge_model.c").unlink(), "ethoedge_model.c: not found: export the"),
        (meta_edit("config", {"prefix": "ethoedge_model", "word_bits": 16}),
         "export.json: config.word_bits is 16 but quantized.json is quantized at W=8"),
        (meta_edit("config", {"prefix": "ethoedge_model", "word_bits": "8"}),
         "export.json: config: export.word_bits must be an integer, got '8'"),
    ]  # fmt: skip
    for k, (edit, text) in enumerate(cases):
        d = broken(f"e{k}", edit)
        assert main(["verify-c", str(d), "--max-windows", "5"]) == 2
        assert text in _one_line_error(capsys), k
    assert main(["verify-c", str(exported[8]), "--max-windows", "0"]) == 2
    assert "--max-windows" in capsys.readouterr().err


@pytest.mark.parametrize(
    "key,value,said",
    [
        ("format", "ethoedge.c_export/2", "format is 'ethoedge.c_export/2' where an export by"),
        ("format", None, "format is missing where an export by `ethoedge export-c` has"),
        ("n_samples", 64, "n_samples is 64 where the bundle has 50"),
        ("n_samples", "50", "n_samples is '50' where the bundle has 50"),
        ("class_names", ["walk", "rest"], "class_names is ['walk', 'rest'] where the bundle has"),
        ("word_bits", 16, "word_bits is 16 where quantized.json has 8"),
        ("word_bits", None, "word_bits is missing where quantized.json has 8"),
        ("config_hash", "0123456789abcdef", "config_hash is '0123456789abcdef' where config"),
        ("config_hash", None, "config_hash is missing where config hashes to"),
    ],
)
def test_verify_c_export_json_other_than_the_bundle_is_one_line(
    exported, tiny_bundle, tmp_path, capsys, key, value, said
):
    """export.json's format, window length and class names, edited by hand, were not
    checked against the model and bundle verified."""
    import shutil

    assert tiny_bundle[1].n_samples == 50
    d = tmp_path / "edited"
    shutil.copytree(exported[8], d)
    _edit_export_meta(d, key, value)
    assert main(["verify-c", str(d), "--max-windows", "5"]) == 2
    assert f"export.json: {said}" in _one_line_error(capsys)


def test_verify_c_cli_reports_a_difference(exported, tmp_path, capsys):
    """Tamper with one bias in the C: verify-c prints the first difference and exits 1."""
    import shutil

    d = tmp_path / "tampered"
    shutil.copytree(exported[8], d)
    src = (d / "ethoedge_model.c").read_text()
    head, tail = src.split("ethoedge_model_out_bias_acc[", 1)
    body, rest = tail.split("};", 1)
    nums = body.split("{", 1)[1].split(",")
    nums[0] = str(int(nums[0]) + 100000)
    tampered = head + "ethoedge_model_out_bias_acc[" + body.split("{", 1)[0] + "{"
    (d / "ethoedge_model.c").write_text(tampered + ",".join(nums) + "};" + rest)
    code = main(["verify-c", str(d), "--max-windows", "50"])
    out = capsys.readouterr().out
    assert code == 1
    assert "host (window): " in out and "/50 windows identical" in out
    assert "first differing window" in out and "reference scores" in out


@requires_arm
@pytest.mark.qemu
@pytest.mark.parametrize("bits", [8, 16])
def test_cortex_m4_and_m3_match_host_on_500_windows(exported, tiny_bundle, bits):
    """The same C on emulated Cortex-M4 (DSP path) and Cortex-M3 (plain C, no FPU/DSP)."""
    q = QuantizedStudent.load(exported[bits] / "quantized.json")
    X = quantize_input(tiny_bundle[1].X[:500], q.in_frac)
    host, host_same = run_c(exported[bits], X)
    assert host_same.all()
    for target in ("cortex-m4", "cortex-m3"):
        scores, same = run_c(exported[bits], X, target=target)
        assert same.all(), target
        np.testing.assert_array_equal(scores, host, err_msg=target)


def test_export_verify_cost_for_the_pipeline(tiny_bundle, tmp_path):
    """The pipeline's one call: export, verify (host; QEMU where installed), cost."""
    from ethoedge.export.deploy import export_verify_cost
    from ethoedge.export.toolchain import have_arm

    bundle_dir, windows = tiny_bundle
    r = export_verify_cost(bundle_dir, 8, tmp_path / "c", windows.X[:40], qemu_windows=20)
    assert r["verified"] and r["verify"]["host"] == {"windows": 40, "identical": 40,
                                                     "first_diff": None}  # fmt: skip
    hop = windows.n_samples // 2  # the streaming API with overlapping windows, one stream
    assert r["verify"][f"host streaming, hop {hop}"]["identical"] == 2 * 40 - 1
    if have_arm():
        assert r["verify"]["cortex-m3"]["identical"] == 20
        for core in ("cortex-m4", "cortex-m3"):
            assert r["verify"][f"{core} streaming, hop {hop}"]["identical"] == 2 * 10 - 1
        assert r["flash_bytes"] > 0 and r["instructions"] > r["macs"]
        assert r["m3_instructions"] > r["instructions"] and r["m3_flash_bytes"] > 0


def test_a_damaged_integer_model_is_named_by_the_int_engine(tiny_bundle, tmp_path):
    """The int engine reads quantized/w8.json as the C export does: a missing tensor, another
    hidden size, a tensor of another word length or values beyond 8 bits are one error naming
    the file (they were a KeyError or matmul traceback, or ran silently)."""
    import json
    import shutil

    from ethoedge.errors import ConfigError
    from ethoedge.inference import Classifier

    def edit(change):
        def f(text: bytes) -> bytes:
            d = json.loads(text)
            change(d)
            return json.dumps(d).encode()

        return f

    def big(d):
        d["weights"]["out.bias"]["values"][0] = 300

    damaged = [
        (edit(lambda d: d["weights"].pop("mlp.weight")), "no tensor 'mlp.weight'"),
        (
            edit(lambda d: d.update(hidden=8)),
            "tensor 'inp.weight' has shape (16, 3), expected (8, 3)",
        ),
        (edit(lambda d: d["weights"]["out.weight"].update(word_bits=16)), "is 16-bit in a W=8"),
        (edit(big), "tensor 'out.bias' has values outside the 8-bit range"),
        (edit(lambda d: d["act_frac"].pop("m")), "no fraction bits for activation 'm'"),
    ]
    for k, (change, text) in enumerate(damaged):
        b = tmp_path / f"bundle_{k}"
        shutil.copytree(tiny_bundle[0], b)
        f = b / "quantized" / "w8.json"
        f.write_bytes(change(f.read_bytes()))
        with pytest.raises(ConfigError, match=r"w8\.json: not a readable integer model") as ei:
            Classifier.from_bundle(b, engine="int", bits=8)
        assert text in str(ei.value)


def test_integer_model_class_names_other_than_the_bundles_are_named(tiny_bundle, tmp_path, capsys):
    """quantized/w8.json naming the classes in another order than bundle.json: the int engine
    labelled by bundle.json's names and the C by the model's (answers under wrong names)."""
    import shutil

    from ethoedge.errors import ConfigError
    from ethoedge.inference import Classifier

    b = tmp_path / "bundle"
    shutil.copytree(tiny_bundle[0], b)
    f = b / "quantized" / "w8.json"
    d = json.loads(f.read_text())
    d["class_names"] = d["class_names"][::-1]
    f.write_text(json.dumps(d))
    text = f"{f}: class_names {d['class_names']} differ from bundle.json's"
    with pytest.raises(ConfigError, match=re.escape(text)):
        Classifier.from_bundle(b, engine="int", bits=8)
    out = tmp_path / "c"
    assert main(["export-c", str(b), "--bits", "8", "--out", str(out)]) == 2
    assert text in _one_line_error(capsys)
    assert not out.exists()
    d["class_names"] = ["a"] * len(d["class_names"])
    f.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="class names must be distinct names"):
        Classifier.from_bundle(b, engine="int", bits=8)


def test_verify_c_export_config_other_than_the_export_is_one_line(exported, tmp_path, capsys):
    """The config entry's window length is the bundle's; a config edited after the export
    (its hash no longer its own) or a model header of another export is one line."""
    import shutil

    def edited(name: str, edit) -> Path:
        d = tmp_path / name
        shutil.copytree(exported[8], d)
        meta = json.loads((d / "export.json").read_text())
        edit(meta, d)
        (d / "export.json").write_text(json.dumps(meta))
        return d

    def header(d: Path) -> None:
        h = d / "ethoedge_model.h"
        h.write_text(re.sub(r"export config hash: \S+", "export config hash: 0f0f", h.read_text()))

    cases = [
        (lambda m, d: m["config"].update(n_samples=64),
         "export.json: config.n_samples is 64 where the bundle has 50"),
        (lambda m, d: m["config"].update(use_dsp=False),
         "export.json: config_hash is '"),
        (lambda m, d: header(d),
         "ethoedge_model.h: has config hash '0f0f' where export.json has '"),
    ]  # fmt: skip
    for k, (edit, text) in enumerate(cases):
        d = edited(f"c{k}", edit)
        assert main(["verify-c", str(d), "--max-windows", "5"]) == 2
        assert text in _one_line_error(capsys), k


@pytest.mark.parametrize(
    "text,said",
    [("{", "not readable export metadata"), ("[]", "not the description of an export")],
)
def test_a_damaged_export_json_is_named_by_the_python_api(exported, tmp_path, text, said):
    """verify_c and measure_cost without a prefix read it from export.json: a damaged one is
    a ConfigError naming it, not a JSON, Key or Type error."""
    import shutil

    from ethoedge.errors import ConfigError
    from ethoedge.export.cost import measure_cost

    d = tmp_path / "damaged"
    shutil.copytree(exported[8], d)
    (d / "export.json").write_text(text)
    X = np.zeros((1, 3, 50), np.int16)
    for call in (lambda: verify_c(d, X, np.zeros((1, 4), np.int64)), lambda: measure_cost(d)):
        with pytest.raises(ConfigError, match=said) as ei:
            call()
        assert ei.value.path == d / "export.json"
