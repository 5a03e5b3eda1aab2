"""Bundle-level export and verification (what ``ethoedge export-c`` / ``verify-c`` run).

``export_bundle`` reads ``BUNDLE/quantized/w{bits}.json`` and writes, next to the C module,
``export.json`` (bundle path, word length, export config, checksums, tool version, command)
and ``quantized.json`` (the integer model the C was generated from), so that the export
directory can be verified on its own later.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ethoedge import __version__
from ethoedge.errors import ConfigError, EthoedgeError
from ethoedge.export.config import SUPPORTED_WORD_BITS, ExportConfig, config_hash
from ethoedge.export.emit import emit_c, write_files
from ethoedge.export.verify import (
    EXPORT_META,
    VerifyResult,
    read_export_meta,
    stream_windows,
    verify_c,
    verify_stream,
)
from ethoedge.quantize.qmodel import QuantizedStudent

if TYPE_CHECKING:
    from ethoedge.bundle import BundleInfo
    from ethoedge.data.windows import WindowConfig

QUANTIZED_COPY = "quantized.json"
EXPORT_FORMAT = "ethoedge.c_export/1"  # export.json's "format"


def quantized_path(bundle_dir: str | Path, bits: int) -> Path:
    """Where ``ethoedge quantize`` writes the W-bit model of a bundle."""
    return Path(bundle_dir) / "quantized" / f"w{bits}.json"


def input_orientation(window: WindowConfig) -> str:
    """How the exported model's input samples must be oriented: as recorded, or turned by the
    animal's orientation calibration (``window.calibrate``), which the firmware computes with
    the kernel library's orientation functions."""
    if window.calibrate == "none":
        return "as recorded"
    return (
        f"each animal's samples turned by the smallest rotation that takes its mean gravity "
        f"direction onto {window.gravity_axis} (window.calibrate: {window.calibrate}): the "
        f"firmware turns them before the model with ethoedge_orientation and ethoedge_orient "
        f"(ethoedge_kernels.h; the model header's GRAVITY_AXIS and GRAVITY_SIGN)"
    )


def export_bundle(
    bundle_dir: str | Path,
    bits: int,
    out_dir: str | Path,
    *,
    prefix: str = "ethoedge_model",
    command: str | None = None,
) -> list[Path]:
    """Export a bundle's W-bit quantized student as C into ``out_dir``.

    Everything is validated and generated in memory first; on any error nothing is written.
    Returns the written paths.
    """
    if bits not in SUPPORTED_WORD_BITS:
        raise ConfigError(f"--bits {bits} cannot be exported to C (supported: 8, 16)")
    from ethoedge.bundle import read_bundle_info

    bundle_dir = Path(bundle_dir)
    info = read_bundle_info(bundle_dir)
    q_path = quantized_path(bundle_dir, bits)
    if not q_path.is_file():
        raise EthoedgeError(
            f"no {bits}-bit quantized model at {q_path}: the bundle is not quantized at W={bits}; "
            f"run `ethoedge quantize {bundle_dir} --bits {bits}` first"
        )
    q = QuantizedStudent.load(q_path, info.class_names)
    cfg = ExportConfig(
        prefix=prefix, word_bits=bits, n_samples=info.n_samples,
        gravity_axis=info.window.turned_onto,
    )  # fmt: skip
    cfg.validate()
    try:
        files = emit_c(q, cfg, command=command)
    except EthoedgeError as e:  # the model in the file does not fit the export
        if e.path is not None:
            raise
        raise type(e)(e.message, path=q_path) from None
    meta = {
        "format": EXPORT_FORMAT,
        "ethoedge_version": __version__,
        "command": command,
        "bundle": str(bundle_dir.resolve()),
        "word_bits": bits,
        "n_samples": cfg.n_samples,
        "input_orientation": input_orientation(info.window),
        "class_names": list(q.class_names),
        "config": cfg.to_json(),
        "config_hash": cfg.hash(),
        "model_checksum": q.checksum(),
        "files": sorted(files),
    }
    files[QUANTIZED_COPY] = json.dumps(q.to_json()) + "\n"
    files[EXPORT_META] = json.dumps(meta, indent=2) + "\n"
    files.update(_kept_metadata(Path(out_dir), prefix, files))
    return write_files(files, out_dir)


def metadata_names(prefix: str | None = None) -> tuple[str, str]:
    """The export metadata and quantized-model file names: of the folder's latest export
    (``prefix`` None: ``export.json``, ``quantized.json``), or of the model ``prefix`` kept
    beside a later export of another prefix (``<prefix>.export.json``, ...)."""
    if prefix is None:
        return EXPORT_META, QUANTIZED_COPY
    return f"{prefix}.{EXPORT_META}", f"{prefix}.{QUANTIZED_COPY}"


def _kept_metadata(out_dir: Path, prefix: str, new: dict[str, str]) -> dict[str, str]:
    """Several models go into one folder (one firmware) with different prefixes, and
    ``export.json`` describes the latest: a previous export of another prefix keeps its
    metadata under its own names, so that ``verify-c --prefix`` can still check it. A kept
    copy of ``prefix`` itself is replaced by the new metadata (never stale)."""
    kept: dict[str, str] = {}
    if (out_dir / EXPORT_META).is_file() and (out_dir / QUANTIZED_COPY).is_file():
        try:
            old = read_export_meta(out_dir)["config"]["prefix"]
        except EthoedgeError:  # not an export's description: overwritten as before
            old = prefix
        if old != prefix:
            m, q = metadata_names(old)
            kept[m] = (out_dir / EXPORT_META).read_text(encoding="utf-8")
            kept[q] = (out_dir / QUANTIZED_COPY).read_text(encoding="utf-8")
    m, q = metadata_names(prefix)
    if (out_dir / m).exists() or (out_dir / q).exists():
        kept[m], kept[q] = new[EXPORT_META], new[QUANTIZED_COPY]
    return kept


def _metadata_of(export_dir: Path, prefix: str | None) -> tuple[str, str]:
    """The metadata names of the model ``prefix`` in ``export_dir`` (None: the latest)."""
    if prefix is None:
        return metadata_names()
    latest = export_dir / EXPORT_META
    if latest.is_file() and read_export_meta(export_dir)["config"]["prefix"] == prefix:
        return metadata_names()
    if (export_dir / metadata_names(prefix)[0]).is_file():
        return metadata_names(prefix)
    found = sorted(
        {p.name.removesuffix(f".{EXPORT_META}") for p in export_dir.glob(f"*.{EXPORT_META}")}
        | ({read_export_meta(export_dir)["config"]["prefix"]} if latest.is_file() else set())
    )
    raise ConfigError(
        f"no model with prefix {prefix!r} exported here (found: {', '.join(found) or 'none'})",
        path=export_dir,
    )


def verify_export(
    export_dir: str | Path,
    data_path: str | Path | None,
    *,
    targets: tuple[str, ...] = ("host",),
    max_windows: int | None = None,
    data_format: str | None = None,
    units: str | None = None,
    prefix: str | None = None,
) -> list[VerifyResult]:
    """Run the exported C on every window of ``data_path`` (read with the bundle's data
    settings, ``data_format`` and ``units`` replacing its format and units where given) and
    compare with the integer reference, on each target (``host``, ``cortex-m4``,
    ``cortex-m3``). ``prefix``: which model of a folder holding several (default: the latest
    export)."""
    from ethoedge.quantize.reference import quantize_input, reference_logits_batched

    export_dir = Path(export_dir)
    if max_windows is not None and max_windows < 1:
        raise ConfigError(f"--max-windows must be at least 1, got {max_windows}")
    if export_dir.is_file():
        raise ConfigError("is a file: give the folder `ethoedge export-c` wrote", path=export_dir)
    if not (export_dir / EXPORT_META).is_file():
        latest = export_dir / EXPORT_META
        raise EthoedgeError(f"{latest} not found: export with `ethoedge export-c` first")
    meta_name, q_name = _metadata_of(export_dir, prefix)
    meta_path = export_dir / meta_name
    meta = read_export_meta(export_dir, meta_name)
    q_path = export_dir / q_name
    if not q_path.is_file():
        raise ConfigError("not found: export the model again with `ethoedge export-c`", path=q_path)
    q = QuantizedStudent.load(q_path)
    if q.checksum() != meta["model_checksum"]:
        raise EthoedgeError(f"{q_path} does not match {meta_name}")
    from ethoedge.bundle import windows_for_bundle

    bundle_dir = Path(str(meta["bundle"]))
    if not (bundle_dir / "bundle.json").is_file():
        raise ConfigError(
            f"the model bundle it was exported from is no longer at {bundle_dir} (no"
            " bundle.json); its data settings window the data",
            path=meta_path,
        )
    from ethoedge.bundle import read_bundle_info

    info = read_bundle_info(bundle_dir)
    _check_meta_agrees(meta, meta_path, info, q, q_name)
    try:
        cfg = ExportConfig.from_json(meta["config"])
        cfg.validate()
    except ConfigError as e:
        raise ConfigError(f"config: {e.message}", path=meta_path) from None
    if cfg.word_bits not in (None, q.word_bits):
        raise ConfigError(
            f"config.word_bits is {cfg.word_bits} but {q_name} is quantized at W={q.word_bits}:"
            " export the model again with `ethoedge export-c`",
            path=meta_path,
        )
    if cfg.n_samples not in (None, info.n_samples):
        raise ConfigError(
            f"config.n_samples is {cfg.n_samples} where the bundle has {info.n_samples}:"
            " export the model again with `ethoedge export-c`",
            path=meta_path,
        )
    _check_config_hash(meta, meta_path)
    for name in (f"{cfg.prefix}.c", f"{cfg.prefix}.h", "ethoedge_kernels.c", "ethoedge_kernels.h"):
        if not (export_dir / name).is_file():
            raise ConfigError(
                "not found: export the model again with `ethoedge export-c`",
                path=export_dir / name,
            )
    _check_header_hash(export_dir / f"{cfg.prefix}.h", meta["config_hash"], meta_name)
    if cfg.gravity_axis is None:
        windows = windows_for_bundle(bundle_dir, data_path, data_format=data_format, units=units)
        X = quantize_input(windows.X, q.in_frac)
        raw, means = X, None
    else:  # the samples as recorded, turned in C as the firmware turns them
        from dataclasses import replace

        from ethoedge.quantize.orient import turn_like_firmware

        b = read_bundle_info(bundle_dir)
        b = replace(b, window=replace(b.window, calibrate="none"))
        windows = windows_for_bundle(b, data_path, data_format=data_format, units=units)
        raw, means, X = turn_like_firmware(windows.X, windows.animal, cfg.gravity_axis,
                                           q.in_frac)  # fmt: skip
    if max_windows is not None:
        X, raw = X[:max_windows], raw[:max_windows]
        means = None if means is None else means[:max_windows]
    expected = reference_logits_batched(q, X)
    prefix = cfg.prefix
    results = [verify_c(export_dir, raw, expected, t, prefix=prefix, means=means)
               for t in targets]  # fmt: skip
    return results + verify_half_hop(q, cfg, X, targets)


def _check_meta_agrees(
    meta: dict, meta_path: Path, info: BundleInfo, q: QuantizedStudent, q_name: str
) -> None:
    """export.json's format, window length and class names are those of the bundle it was
    exported from, and its word length that of the quantized model beside it: a description
    edited by hand, or of another model, is not verified as this export's."""
    want = {  # key: (value, whose it is)
        "format": (EXPORT_FORMAT, "an export by `ethoedge export-c`"),
        "word_bits": (q.word_bits, q_name),
        "n_samples": (info.n_samples, "the bundle"),
        "class_names": (list(info.class_names), "the bundle"),
    }
    for key, (value, whose) in want.items():
        if key not in meta or meta[key] != value or type(meta[key]) is not type(value):
            got = f"is {meta[key]!r}" if key in meta else "is missing"
            raise ConfigError(
                f"{key} {got} where {whose} has {value!r}: export the model again with"
                " `ethoedge export-c`",
                path=meta_path,
            )


def _check_config_hash(meta: dict, meta_path: Path) -> None:
    """export.json's ``config_hash`` is the hash of its ``config`` as written by the export:
    a config edited afterwards no longer describes the C."""
    want = config_hash(meta["config"])
    got = meta.get("config_hash")
    if got != want:
        said = f"is {got!r}" if "config_hash" in meta else "is missing"
        raise ConfigError(
            f"config_hash {said} where config hashes to {want!r} (edited after the export?):"
            " export the model again with `ethoedge export-c`",
            path=meta_path,
        )


def _check_header_hash(header: Path, want: str, meta_name: str) -> None:
    """The model header was generated with the export config that the metadata describes
    (its comment names the config's hash): not a header of another export."""
    m = re.search(
        r"export config hash: (\S+)", header.read_text(encoding="utf-8", errors="replace")
    )
    if m is None or m.group(1) != want:
        said = f"config hash {m.group(1)!r}" if m else "no export config hash"
        raise ConfigError(
            f"has {said} where {meta_name} has {want!r} (the C of another export?): export"
            " the model again with `ethoedge export-c`",
            path=header,
        )


def verify_half_hop(
    q: QuantizedStudent, cfg: ExportConfig, X: np.ndarray, targets: tuple[str, ...]
) -> list[VerifyResult]:
    """The streaming API with hop = L / 2 (exported afresh into a temporary directory) on the
    windows ``X`` joined into one stream: every overlapping window against the reference.
    Nothing for an odd window length."""
    import tempfile
    from dataclasses import replace

    from ethoedge.quantize.reference import reference_logits_batched

    n_samples = X.shape[2]
    if n_samples % 2 or len(X) == 0:
        return []
    half = replace(cfg, hop=n_samples // 2, n_samples=n_samples, example_main=False)
    expected = reference_logits_batched(q, stream_windows(X, n_samples // 2)[1])
    with tempfile.TemporaryDirectory(prefix="ethoedge_hop_") as tmp:
        write_files(emit_c(q, half), tmp)
        return [verify_stream(tmp, X, expected, t, prefix=half.prefix) for t in targets]


def expected_logits(qmodel: QuantizedStudent, X_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X_int16, reference logits)`` of raw windows in g (helper for tests and the pipeline)."""
    from ethoedge.quantize.reference import quantize_input, reference_logits_batched

    X = quantize_input(X_g, qmodel.in_frac)
    return X, reference_logits_batched(qmodel, X)


def export_verify_cost(
    bundle_dir: str | Path,
    bits: int,
    out_dir: str | Path,
    X_g: np.ndarray,
    *,
    qemu: bool | None = None,
    qemu_windows: int = 500,
    command: str | None = None,
    recorded: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """One call for the pipeline: export the bundle's W-bit student, verify it on the raw
    windows ``X_g`` (n, 3, L) in g (host: all of them; Cortex-M4 and M3 on QEMU: the first
    ``qemu_windows``), and measure its cost on the emulated Cortex-M4.

    ``qemu=None`` runs the QEMU checks and the cost only where the Arm toolchain is installed.
    The streaming API is also checked with hop = L / 2 (host: every window; QEMU: half the
    ``qemu_windows``). For a bundle trained on calibrated windows, ``recorded`` (the windows
    as recorded in g and their animals) adds the window API with the samples turned in C as
    the firmware turns them, against the reference on the same integer turn
    (:func:`ethoedge.quantize.orient.turn_like_firmware`); on QEMU it replaces the window API
    check on the windows turned in float (the same model code, with the turn in front). The
    Cortex-M3 cost figures are the same keys prefixed ``m3_``.
    Returns a JSON-ready dict: ``verify`` (per target: windows, identical, first_diff),
    ``verified`` (all identical), and, with QEMU, the cost keys of
    :func:`ethoedge.export.cost.measure_cost` (``flash_bytes``, ``ram_bytes``,
    ``instructions``, ...).
    """
    from ethoedge.export import toolchain
    from ethoedge.export.cost import measure_cost

    export_bundle(bundle_dir, bits, out_dir, command=command)
    out_dir = Path(out_dir)
    q = QuantizedStudent.load(out_dir / QUANTIZED_COPY)
    X, expected = expected_logits(q, X_g)
    use_qemu = toolchain.have_arm() if qemu is None else qemu
    results = [verify_c(out_dir, X, expected, "host")]
    cfg = ExportConfig.from_json(json.loads((out_dir / EXPORT_META).read_text())["config"])
    turned = None
    if cfg.gravity_axis is not None and recorded is not None:
        from ethoedge.quantize.orient import turn_like_firmware
        from ethoedge.quantize.reference import reference_logits_batched

        raw, means, X_t = turn_like_firmware(recorded[0], recorded[1], cfg.gravity_axis,
                                             q.in_frac)  # fmt: skip
        turned = (raw, means, reference_logits_batched(q, X_t))
        results.append(verify_c(out_dir, raw, turned[2], "host", means=means))
    results += verify_half_hop(q, cfg, X, ("host",))
    if use_qemu:
        k = min(qemu_windows, len(X))
        cores = ("cortex-m4", "cortex-m3")
        if turned is None:
            results += [verify_c(out_dir, X[:k], expected[:k], t) for t in cores]
        else:  # the same model code, with the firmware's turn in front of it
            raw, means, exp_t = turned
            results += [verify_c(out_dir, raw[:k], exp_t[:k], t, means=means[:k])
                        for t in cores]  # fmt: skip
        results += verify_half_hop(q, cfg, X[: max(1, k // 2)], cores)
    out: dict = {
        "dir": str(out_dir),
        "word_bits": bits,
        "verify": {
            (r.target if r.api == "window" else f"{r.target} {r.api}"): {
                "windows": r.n_windows,
                "identical": r.n_identical,
                "first_diff": r.first_diff,
            }
            for r in results
        },
        "verified": all(r.ok for r in results),
    }
    if use_qemu:
        out.update(measure_cost(out_dir))
        m3 = measure_cost(out_dir, target="cortex-m3")
        out.update({f"m3_{k}": v for k, v in m3.items() if k not in ("assumptions", "target")})
    return out
