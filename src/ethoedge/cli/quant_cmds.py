"""``ethoedge quantize BUNDLE``: dynamic fixed-point versions of a bundle's student."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ethoedge.cli.app import app
from ethoedge.cli.options import format_opt, quiet_opt, units_opt
from ethoedge.errors import ConfigError


def parse_bits(text: str) -> tuple[int, ...]:
    """``"16,12,8"`` -> ``(16, 12, 8)``: each word length once, each in 4..16.

    >>> parse_bits("16, 8, 16")
    (16, 8)
    """
    try:
        bits = tuple(dict.fromkeys(int(t) for t in text.split(",") if t.strip()))
    except ValueError:
        raise ConfigError(f"--bits must be comma-separated integers, got {text!r}") from None
    if not bits:
        raise ConfigError("--bits is empty")
    from ethoedge.quantize.config import check_word_bits

    return tuple(check_word_bits(b, key="--bits") for b in bits)


@app.command("quantize")
def quantize(
    bundle: Path = typer.Argument(
        ..., metavar="BUNDLE", help="Model bundle directory (from `ethoedge run`)."
    ),
    bits: str = typer.Option("16,12,8,6", "--bits", help="Word lengths, comma-separated (4..16)."),
    qat: bool = typer.Option(
        False, "--qat", help="Quantization-aware fine-tuning at every word length."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Data to calibrate on (default: the bundle's data set)."
    ),
    rule: str = typer.Option("max", "--rule", help="Fraction-bit rule: max or percentile."),
    percentile: float = typer.Option(99.99, "--percentile", help="Percentile of |x| (rule)."),
    calib_windows: int = typer.Option(2048, "--calib-windows", help="Calibration windows."),
    qat_epochs: int = typer.Option(5, "--qat-epochs", help="Epochs of fine-tuning."),
    format: str | None = format_opt(None),
    units: str | None = units_opt(),
    quiet: bool = quiet_opt(),
) -> None:
    """Quantize the bundle's student; write BUNDLE/quantized/w{bits}.json and print a table."""
    from ethoedge.quantize.bundle_quant import quantize_bundle
    from ethoedge.quantize.config import QuantConfig

    cfg = QuantConfig(
        word_bits=parse_bits(bits),
        rule=rule,  # type: ignore[arg-type]
        percentile=percentile,
        calib_windows=calib_windows,
        qat=qat,
        qat_epochs=qat_epochs,
    )
    err = Console(stderr=True, markup=False)
    results = quantize_bundle(
        bundle,
        cfg,
        data=data,
        log=None if quiet else (lambda m: err.print(m, highlight=False)),
        data_format=format,
        units=units,
    )
    con = Console(markup=False)
    if not con.is_terminal:
        con = Console(width=160, markup=False)
    t = Table(title=f"quantized student of {bundle} (on the bundle's data windows)")
    for col in ("W", "bytes", "method", "agree w/ float", "MCC", "MCC PTQ", "MCC QAT", "file"):
        t.add_column(col, justify="right" if col != "file" else "left")
    for r in results:
        t.add_row(
            str(r["word_bits"]),
            str(r["bytes"]),
            r["method"],
            f"{r['agreement']:.4f}",
            f"{r['mcc']:.4f}",
            f"{r['ptq']['mcc']:.4f}",
            f"{r['qat']['mcc']:.4f}" if r["qat"] else "-",
            str(bundle / "quantized" / f"w{r['word_bits']}.json"),
        )
    con.print(t)
    f = Table(title="fraction bits per tensor")
    f.add_column("tensor")
    for r in results:
        f.add_column(f"W={r['word_bits']}", justify="right")
    for name in results[0]["frac_bits"]:
        f.add_row(name, *(str(r["frac_bits"][name]) for r in results))
    con.print(f)
    con.print(f"float student MCC on the same windows: {results[0]['float_mcc']:.4f}")
