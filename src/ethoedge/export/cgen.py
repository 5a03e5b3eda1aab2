"""Pure string helpers for C source generation (no I/O, no model knowledge)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

_CTYPE_RANGE = {
    "int8_t": (-(1 << 7), (1 << 7) - 1),
    "int16_t": (-(1 << 15), (1 << 15) - 1),
    "int32_t": (-(1 << 31), (1 << 31) - 1),
    "int64_t": (-(1 << 63), (1 << 63) - 1),
}


def storage_type(word_bits: int) -> str:
    """C storage type of a ``word_bits`` integer.

    >>> storage_type(8), storage_type(16)
    ('int8_t', 'int16_t')
    """
    if word_bits == 8:
        return "int8_t"
    if word_bits == 16:
        return "int16_t"
    raise ValueError(f"no C storage type for {word_bits}-bit words")


def c_int(v: int) -> str:
    """A C integer literal; beyond int32 it is ``INT64_C(v)``, and INT32_MIN is spelled safely
    (``-2147483648`` is not a literal in C).

    >>> c_int(5), c_int(-3), c_int(-2147483648), c_int(1 << 40)
    ('5', '-3', '(-2147483647 - 1)', 'INT64_C(1099511627776)')
    """
    v = int(v)
    if v == -(1 << 31):
        return "(-2147483647 - 1)"
    if not -(1 << 31) < v < (1 << 31):
        return f"INT64_C({v})"
    return str(v)


def c_float(v: float) -> str:
    """A C float literal that round-trips a float32.

    >>> c_float(0.5), c_float(-1e-10), c_float(2.0)
    ('0.5f', '-1e-10f', '2.0f')
    """
    s = str(np.float32(v))
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


def _rows(values: Sequence[str], per_line: int, indent: str) -> str:
    lines = []
    for i in range(0, len(values), per_line):
        lines.append(indent + ", ".join(values[i : i + per_line]) + ",")
    return "\n".join(lines)


def c_array(
    name: str,
    ctype: str,
    values: np.ndarray,
    *,
    comment: str = "",
    static: bool = True,
    per_line: int = 16,
) -> str:
    """A ``static const`` C array definition of a 1-D or 2-D integer or float array.

    Integer values are range-checked against ``ctype``.

    >>> print(c_array("w", "int8_t", np.array([[1, -2], [3, 4]])))
    static const int8_t w[2][2] = {
        {1, -2},
        {3, 4},
    };
    """
    values = np.asarray(values)
    if ctype in _CTYPE_RANGE:
        lo, hi = _CTYPE_RANGE[ctype]
        if values.size and (values.min() < lo or values.max() > hi):
            raise ValueError(f"{name}: values outside the range of {ctype}")
        fmt = c_int
    elif ctype == "float":
        fmt = c_float
    else:
        raise ValueError(f"unsupported C type {ctype}")
    dims = "".join(f"[{d}]" for d in values.shape)
    head = ("static " if static else "") + f"const {ctype} {name}{dims} = {{"
    out = [f"/* {comment} */"] if comment else []
    out.append(head)
    if values.ndim == 1:
        out.append(_rows([fmt(v) for v in values.tolist()], per_line, "    "))
    elif values.ndim == 2:
        for row in values.tolist():
            body = ", ".join(fmt(v) for v in row)
            if len(body) <= 88:
                out.append("    {" + body + "},")
            else:
                out.append("    {")
                out.append(_rows([fmt(v) for v in row], per_line, "        "))
                out.append("    },")
    else:
        raise ValueError("only 1-D and 2-D arrays are emitted")
    out.append("};")
    return "\n".join(out)


def c_enum(prefix: str, items: Iterable[tuple[str, str, str]]) -> str:
    """An anonymous ``enum`` of named integer constants: ``(name, expression, comment)``.

    >>> print(c_enum("P", [("A", "3", "three"), ("B", "P_A + 1", "")]))
    enum {
        P_A = 3, /* three */
        P_B = P_A + 1
    };
    """
    items = list(items)
    lines = []
    for i, (name, expr, comment) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        tail = f" /* {comment} */" if comment else ""
        lines.append(f"    {prefix}_{name} = {expr}{sep}{tail}")
    return "enum {\n" + "\n".join(lines) + "\n};"


def block_comment(lines: Iterable[str]) -> str:
    """A ``/* ... */`` block, one `` * `` line per input line (``*/`` inside is defused).

    >>> print(block_comment(["a", "b */ c"]))
    /*
     * a
     * b * / c
     */
    """
    body = [(" * " + ln.replace("*/", "* /")).rstrip() for ln in lines]
    return "/*\n" + "\n".join(body) + "\n */"
