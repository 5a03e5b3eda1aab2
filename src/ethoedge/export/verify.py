"""Run the exported C on windows and compare its scores with the integer reference.

A generated harness calls both APIs on every window: ``<prefix>_classify`` and, with one
state carried across consecutive windows, ``<prefix>_push``/``<prefix>_scores``; it prints the
window scores and whether the streaming scores were identical. The windows are a binary file
(int32 count, then int16 samples): on the host it is the harness's stdin; on an emulated MCU
the harness reads ``vectors.bin`` through semihosting ``fopen``, so the image stays small
whatever the number of windows.

The streaming API with overlapping windows is checked by :func:`verify_stream`: the windows are
concatenated into one stream, pushed sample by sample into one state, and every window the C
emits (one every ``<PREFIX>_HOP`` samples) is compared with the reference on the same samples
(:func:`stream_windows`).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ethoedge.errors import ConfigError, EthoedgeError
from ethoedge.export import toolchain

EXPORT_META = "export.json"
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verification run.

    Attributes:
        n_windows: windows run.
        n_identical: windows whose C scores equal the expected logits and whose streaming
            scores equal the window scores.
        first_diff: index of the first differing window (None when all are identical).
        target: ``host``, ``cortex-m4`` or ``cortex-m3``.
        c_scores: scores of the first differing window from the C (None when identical).
        expected: expected scores of that window (None when identical).
        stream_mismatches: windows where the streaming API disagreed with the window API.
    """

    n_windows: int
    n_identical: int
    first_diff: int | None
    target: str = "host"
    c_scores: list[int] | None = None
    expected: list[int] | None = None
    stream_mismatches: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    api: str = "window"

    @property
    def ok(self) -> bool:
        return self.n_windows == self.n_identical

    def summary(self) -> str:
        s = f"{self.n_identical}/{self.n_windows} windows identical ({self.target}, {self.api})"
        if self.first_diff is not None:
            s += (
                f"; first difference at window {self.first_diff}: C {self.c_scores} "
                f"vs reference {self.expected}"
            )
            if self.stream_mismatches:
                s += f"; {self.stream_mismatches} streaming/window mismatches"
        return s


def read_export_meta(export_dir: str | Path, name: str = EXPORT_META) -> dict:
    """The ``export.json`` written next to the C by :func:`ethoedge.export.export_bundle` (or
    the metadata file ``name``: a model kept beside a later export, ``<prefix>.export.json``)."""
    path = Path(export_dir) / name
    if not path.is_file():
        raise EthoedgeError(
            f"{path} not found: is this a directory written by `ethoedge export-c`?", path=None
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"not readable export metadata ({e})", path=path) from None
    need = ("bundle", "model_checksum", "config")
    missing = [k for k in need if k not in meta] if isinstance(meta, dict) else list(need)
    if not missing and not (isinstance(meta["config"], dict) and "prefix" in meta["config"]):
        missing = ["config.prefix"]
    if missing:
        raise ConfigError(
            f"not the description of an export (no {', '.join(missing)}): export the model"
            " again with `ethoedge export-c`",
            path=path,
        )
    return meta


def _prefix_and_shape(export_dir: Path, prefix: str | None) -> tuple[str, int, int]:
    """Prefix, window length and class count, read from the generated header."""
    if prefix is None:
        meta_path = export_dir / EXPORT_META
        if meta_path.is_file():
            prefix = str(read_export_meta(export_dir)["config"]["prefix"])
        else:
            heads = [
                p
                for p in export_dir.glob("*.h")
                if p.name not in ("vectors.h", "ethoedge_kernels.h")
            ]
            if len(heads) != 1:
                raise EthoedgeError(f"cannot tell the model prefix in {export_dir}")
            prefix = heads[0].stem
    header = export_dir / f"{prefix}.h"
    if not header.is_file():
        raise EthoedgeError(f"{header} not found")
    text = header.read_text()
    pu = prefix.upper()

    def macro(name: str) -> int:
        m = re.search(rf"#define {pu}_{name} (\d+)", text)
        if not m:
            raise EthoedgeError(f"{header}: no {pu}_{name}")
        return int(m.group(1))

    return prefix, macro("N_SAMPLES"), macro("N_CLASSES")


def export_hop(export_dir: str | Path, prefix: str) -> int:
    """The streaming hop ``<PREFIX>_HOP`` of an export (the window length before hops existed)."""
    text = (Path(export_dir) / f"{prefix}.h").read_text()
    m = re.search(rf"#define {prefix.upper()}_HOP (\d+)", text)
    if m is None:
        return _prefix_and_shape(Path(export_dir), prefix)[1]
    return int(m.group(1))


def c_sources(export_dir: str | Path) -> list[Path]:
    """Every ``.c`` file of an export that builds the model(s): all but ``main.c``.

    Raises:
        EthoedgeError: the kernel library is missing (an export from an older ethoedge).
    """
    export_dir = Path(export_dir)
    if not (export_dir / "ethoedge_kernels.c").is_file():
        raise EthoedgeError(
            f"{export_dir / 'ethoedge_kernels.c'} not found: re-export the model with this "
            "ethoedge (`ethoedge export-c`)"
        )
    return sorted(p for p in export_dir.glob("*.c") if p.name != "main.c")


def _harness(prefix: str, from_file: bool, orient: bool = False) -> str:
    """Harness source: windows from stdin (host) or from ``vectors.bin`` in the current
    directory through semihosting ``fopen`` (QEMU). ``orient``: each window comes after its
    animal's mean sample, and its samples are turned as the firmware turns them
    (``ethoedge_orientation`` on the mean with the header's gravity axis, then
    ``ethoedge_orient`` on each sample) before the model."""
    pu = prefix.upper()
    if orient:
        turn_decl = (
            f"static int16_t raw[{pu}_N_SAMPLES][{pu}_N_CHANNELS];\n"
            "static int16_t mean[3], rot[9];\n"
        )
        read_win = (
            "        if (fread(mean, sizeof mean, 1, in) != 1\n"
            "            || fread(raw, sizeof raw, 1, in) != 1) {\n"
            "            return 3;\n        }\n"
            f"        ethoedge_orientation(mean, {pu}_GRAVITY_AXIS, {pu}_GRAVITY_SIGN, rot);\n"
            f"        for (t = 0; t < {pu}_N_SAMPLES; ++t) {{\n"
            "            ethoedge_orient(rot, raw[t], win[t]);\n        }\n"
        )
        include = '#include "ethoedge_kernels.h"\n'
    else:
        turn_decl = include = ""
        read_win = (
            "        if (fread(win, sizeof win, 1, in) != 1) {\n            return 3;\n        }\n"
        )
    if from_file:
        open_in = (
            '    FILE *in = fopen("vectors.bin", "rb");\n'
            "    if (in == NULL) {\n        return 4;\n    }\n"
        )
    else:
        open_in = "    FILE *in = stdin;\n"
    return f"""/* verification harness generated by ethoedge: window API and streaming API */
#include <inttypes.h>
#include <stdio.h>

#include "{prefix}.h"
{include}
#ifndef {pu}_HOP
#define {pu}_HOP {pu}_N_SAMPLES
#endif

static int16_t win[{pu}_N_SAMPLES][{pu}_N_CHANNELS];
{turn_decl}
int main(void)
{{
    static {prefix}_state_t st;
    int32_t s1[{pu}_N_CLASSES], s2[{pu}_N_CLASSES];
    int32_t n = 0;
    int32_t i;
    int t, c;
{open_in}    if (fread(&n, sizeof n, 1, in) != 1) {{
        return 3;
    }}
    {prefix}_init(&st);
    for (i = 0; i < n; ++i) {{
        int cls1, cls2, same = 1;
        const int16_t(*w)[3] = (const int16_t(*)[3])win;
{read_win}        cls1 = {prefix}_classify(w, s1);
        for (t = 0; t < {pu}_N_SAMPLES; ++t) {{
            int done = {prefix}_push(&st, w[t]);
            /* the window ends at its last sample; overlapping ones (HOP < N_SAMPLES) between */
            if (t == {pu}_N_SAMPLES - 1 ? !done : done && {pu}_HOP == {pu}_N_SAMPLES) {{
                same = 0;
            }}
        }}
        cls2 = {prefix}_scores(&st, s2);
        for (c = 0; c < {pu}_N_CLASSES; ++c) {{
            if (s1[c] != s2[c]) {{
                same = 0;
            }}
        }}
        if (cls1 != cls2) {{
            same = 0;
        }}
        printf("%" PRId32 " %d %d", i, same, cls1);
        for (c = 0; c < {pu}_N_CLASSES; ++c) {{
            printf(" %" PRId32, s1[c]);
        }}
        printf("\\n");
    }}
    return 0;
}}
"""


def _stream_harness(prefix: str, from_file: bool) -> str:
    """Harness of the streaming API: samples (int32 count, then int16 x, y, z each) pushed
    one by one into one state; prints the scores every time a window completes."""
    pu = prefix.upper()
    if from_file:
        open_in = (
            '    FILE *in = fopen("vectors.bin", "rb");\n'
            "    if (in == NULL) {\n        return 4;\n    }\n"
        )
    else:
        open_in = "    FILE *in = stdin;\n"
    return f"""/* streaming harness generated by ethoedge: one window every {pu}_HOP samples */
#include <inttypes.h>
#include <stdio.h>

#include "{prefix}.h"

int main(void)
{{
    static {prefix}_state_t st;
    int32_t s[{pu}_N_CLASSES];
    int16_t x[{pu}_N_CHANNELS];
    int32_t n = 0, i, k = 0;
    int c;
{open_in}    if (fread(&n, sizeof n, 1, in) != 1) {{
        return 3;
    }}
    {prefix}_init(&st);
    for (i = 0; i < n; ++i) {{
        if (fread(x, sizeof x, 1, in) != 1) {{
            return 3;
        }}
        if ({prefix}_push(&st, x)) {{
            int cls = {prefix}_scores(&st, s);
            printf("%" PRId32 " 1 %d", k++, cls);
            for (c = 0; c < {pu}_N_CLASSES; ++c) {{
                printf(" %" PRId32, s[c]);
            }}
            printf("\\n");
        }}
    }}
    return 0;
}}
"""


def _parse(stdout: str, n: int, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.zeros((n, n_classes), dtype=np.int64)
    same = np.zeros(n, dtype=bool)
    cls = np.zeros(n, dtype=np.int64)
    seen = 0
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) != 3 + n_classes or not parts[0].lstrip("-").isdigit():
            continue
        i = int(parts[0])
        if not 0 <= i < n:
            continue
        same[i] = parts[1] == "1"
        cls[i] = int(parts[2])
        scores[i] = [int(v) for v in parts[3:]]
        seen += 1
    if seen != n:
        raise EthoedgeError(f"the C harness printed {seen} of {n} windows:\n{stdout[-500:]}")
    return scores, same, cls


def _to_samples_major(X: np.ndarray, n_samples: int) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != 3 or X.shape[2] != n_samples:
        raise EthoedgeError(f"expected int16 windows (n, 3, {n_samples}), got {X.shape}")
    if X.dtype != np.int16:
        raise EthoedgeError(f"expected int16 windows, got {X.dtype}")
    return np.ascontiguousarray(X.transpose(0, 2, 1))  # (n, L, 3)


def _build_and_run(
    export_dir: Path,
    harness: str,
    blob: bytes,
    *,
    target: str,
    sanitize: bool,
    timeout: float,
) -> str:
    """Build ``harness`` with every model source of the export for ``target``, feed it
    ``blob`` (stdin on the host, ``vectors.bin`` on QEMU) and return its stdout."""
    if target not in toolchain.TARGETS:
        raise EthoedgeError(f"unknown target {target!r} (use {', '.join(toolchain.TARGETS)})")
    sources = c_sources(export_dir)
    with tempfile.TemporaryDirectory(prefix="ethoedge_verify_") as tmp:
        work = Path(tmp)
        src = work / "harness.c"
        src.write_text(harness)
        if target == "host":
            exe = work / "harness"
            extra = SANITIZE_FLAGS if sanitize else ()
            toolchain.compile_host(
                [*sources, src], exe, include=[export_dir], opt="-O1" if sanitize else "-O2",
                extra=extra,
            )  # fmt: skip
            return _run_host(exe, blob, timeout)
        if not toolchain.have_arm():
            raise EthoedgeError(toolchain.missing_arm_message())
        elf = work / "harness.elf"
        toolchain.compile_arm([*sources, src], elf, target=target, include=[export_dir])
        (work / "vectors.bin").write_bytes(blob)
        res = toolchain.run_qemu(elf, target=target, timeout=timeout, cwd=work)
        if res.returncode != 0:
            raise EthoedgeError(
                f"QEMU run failed on {target} (exit {res.returncode}): {res.stderr[-500:]}"
            )
        return res.stdout


def run_c(
    export_dir: str | Path,
    X_int16: np.ndarray,
    *,
    target: str = "host",
    prefix: str | None = None,
    sanitize: bool = False,
    timeout: float = 300.0,
    means: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the exported C on every window: ``(scores (n, C) int64, stream_same (n,))``.

    ``X_int16``: (n, 3, L) int16 model input (``quantize_input`` of raw windows in g).
    ``means``: (n, 3) int16, each window's animal's mean sample, for a model trained on
    calibrated windows: the C then turns each window's samples as the firmware does
    (:func:`ethoedge.quantize.orient.orientation_q` from the mean onto the header's gravity
    axis) before classifying them; ``X_int16`` are the samples as recorded.
    ``sanitize`` builds the host harness with AddressSanitizer and UBSan (any report fails).
    Every ``.c`` of the export but ``main.c`` is compiled (model(s) and kernel library).
    """
    export_dir = Path(export_dir)
    prefix, n_samples, n_classes = _prefix_and_shape(export_dir, prefix)
    Xs = _to_samples_major(X_int16, n_samples)
    n = int(Xs.shape[0])
    if means is None:
        blob = np.int32(n).tobytes() + Xs.astype("<i2").tobytes()
    else:
        m = np.asarray(means)
        if m.shape != (n, 3) or m.dtype != np.int16:
            raise EthoedgeError(f"expected int16 means ({n}, 3), got {m.dtype} {m.shape}")
        per = np.concatenate([m.astype("<i2"), Xs.astype("<i2").reshape(n, -1)], axis=1)
        blob = np.int32(n).tobytes() + np.ascontiguousarray(per).tobytes()
    harness = _harness(prefix, from_file=target != "host", orient=means is not None)
    out = _build_and_run(
        export_dir, harness, blob, target=target, sanitize=sanitize, timeout=timeout
    )
    return _parse(out, n, n_classes)[:2]


def stream_windows(X_int16: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """The windows ``X`` (n, 3, L) as one stream and that stream's windows at ``hop``.

    Returns ``(stream (n L, 3) int16, windows (k, 3, L))`` with the windows starting at
    samples ``0, hop, 2 hop, ...`` (as ``make_windows`` cuts a recording): for ``hop = L``
    they are ``X`` itself, for ``hop = L / 2`` every second window straddles two of ``X``.

    >>> s, w = stream_windows(np.arange(12, dtype=np.int16).reshape(2, 3, 2), 1)
    >>> s.shape, w.shape, w[1].tolist()
    ((4, 3), (3, 3, 2), [[1, 6], [3, 8], [5, 10]])
    """
    X = np.asarray(X_int16)
    n_samples = X.shape[2]
    stream = np.ascontiguousarray(X.transpose(0, 2, 1).reshape(-1, 3))  # (n L, 3)
    starts = np.arange(0, len(stream) - n_samples + 1, hop)
    view = np.lib.stride_tricks.sliding_window_view(stream, n_samples, axis=0)  # (T-L+1, 3, L)
    return stream, np.ascontiguousarray(view[starts])


def run_stream_c(
    export_dir: str | Path,
    stream_int16: np.ndarray,
    *,
    target: str = "host",
    prefix: str | None = None,
    sanitize: bool = False,
    timeout: float = 300.0,
) -> np.ndarray:
    """Scores (k, C) of every window the streaming API emits on ``stream_int16`` (T, 3)."""
    export_dir = Path(export_dir)
    prefix, n_samples, n_classes = _prefix_and_shape(export_dir, prefix)
    hop = export_hop(export_dir, prefix)
    stream = np.ascontiguousarray(np.asarray(stream_int16, dtype="<i2"))
    if stream.ndim != 2 or stream.shape[1] != 3:
        raise EthoedgeError(f"expected an int16 stream (T, 3), got {stream.shape}")
    n_out = (len(stream) - n_samples) // hop + 1 if len(stream) >= n_samples else 0
    blob = np.int32(len(stream)).tobytes() + stream.tobytes()
    harness = _stream_harness(prefix, from_file=target != "host")
    out = _build_and_run(
        export_dir, harness, blob, target=target, sanitize=sanitize, timeout=timeout
    )
    return _parse(out, n_out, n_classes)[0]


def _run_host(exe: Path, blob: bytes, timeout: float) -> str:
    import subprocess

    try:
        res = subprocess.run(
            [str(exe)], input=blob, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise EthoedgeError(f"host harness timed out after {timeout:.0f} s") from e
    if res.returncode != 0:
        raise EthoedgeError(
            f"host harness failed (exit {res.returncode}): "
            + toolchain.first_error(res.stderr.decode(errors="replace"))
        )
    return res.stdout.decode()


def verify_c(
    export_dir: str | Path,
    X_int16: np.ndarray,
    expected_logits: np.ndarray,
    target: str = "host",
    *,
    prefix: str | None = None,
    sanitize: bool = False,
    means: np.ndarray | None = None,
) -> VerifyResult:
    """Compare the exported C's scores with ``expected_logits`` (n, C) on every window
    (``means``: the samples are turned in C first, see :func:`run_c`)."""
    scores, same = run_c(
        export_dir, X_int16, target=target, prefix=prefix, sanitize=sanitize, means=means
    )
    api = "window" if means is None else "window, samples turned in C"
    return _compare(scores, expected_logits, target, same=same, api=api)


def _compare(
    scores: np.ndarray,
    expected_logits: np.ndarray,
    target: str,
    *,
    same: np.ndarray | None = None,
    api: str | None = None,
) -> VerifyResult:
    """The :class:`VerifyResult` of C ``scores`` against ``expected_logits``; ``same``: per
    window, whether the window and streaming APIs agreed (None: not checked)."""
    expected = np.asarray(expected_logits, dtype=np.int64)
    if expected.shape != scores.shape:
        raise EthoedgeError(f"expected logits {expected.shape} vs C scores {scores.shape}")
    ok = np.all(scores == expected, axis=1)
    if same is not None:
        ok &= same
    bad = np.flatnonzero(~ok)
    first = int(bad[0]) if bad.size else None
    extra: dict[str, object] = {}
    if same is not None:
        extra["stream_mismatches"] = int((~same).sum())
    if api is not None:
        extra["api"] = api
    return VerifyResult(
        n_windows=len(ok),
        n_identical=int(ok.sum()),
        first_diff=first,
        target=target,
        c_scores=None if first is None else scores[first].tolist(),
        expected=None if first is None else expected[first].tolist(),
        **extra,  # type: ignore[arg-type]
    )


def verify_stream(
    export_dir: str | Path,
    X_int16: np.ndarray,
    expected_logits: np.ndarray,
    target: str = "host",
    *,
    prefix: str | None = None,
    sanitize: bool = False,
) -> VerifyResult:
    """Compare the streaming API with ``expected_logits`` of ``stream_windows(X, hop)[1]``
    (the export's hop): every window it emits, overlapping ones included."""
    export_dir = Path(export_dir)
    prefix = _prefix_and_shape(export_dir, prefix)[0]
    hop = export_hop(export_dir, prefix)
    stream, _ = stream_windows(X_int16, hop)
    scores = run_stream_c(export_dir, stream, target=target, prefix=prefix, sanitize=sanitize)
    return _compare(scores, expected_logits, target, api=f"streaming, hop {hop}")
