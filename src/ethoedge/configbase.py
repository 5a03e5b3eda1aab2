"""The validation layer shared by every configuration class (pydantic v2, dataclass mode).

:func:`config_dataclass` makes a class a frozen pydantic dataclass that rejects unknown keys.
It stays a standard dataclass (``dataclasses.replace``, ``asdict``, ``fields`` and ``==`` work
as before), and every construction - direct, through ``dataclasses.replace`` or through
:func:`from_plain` - validates types, ``Literal`` choices and ranges before ``__post_init__``
runs the rules across fields. Every failure is one
:class:`~ethoedge.errors.ConfigError` line naming the key's dotted path (``student_train.epochs``,
``data.label_map``), the bad value and, for a finite set, the allowed values; a
``ConfigError`` raised by ``__post_init__`` passes through unchanged.

The field types below are strict where YAML could silently mistype a value: an integer is
never a string, a float or a boolean, a number never a string or a boolean, a boolean never
``1`` or ``"yes"``; NumPy scalars count as the Python number they hold, and an integer is a
valid float. A positive or non-negative float is also finite (``.inf`` and ``.nan`` are not a
length, a rate or a learning rate).
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import pydantic.dataclasses
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter
from pydantic import ValidationError as _ValidationError

from ethoedge.errors import ConfigError

T = TypeVar("T")


class _RuleError(ValueError):
    """A value outside a rule of the validators below; its message is the rule."""


def _python_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# YAML 1.1 (PyYAML) reads 1e-3 as text: it wants 1.0e-3. A float field takes it as the number.
_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _float_scalar(value: Any) -> Any:
    value = _python_scalar(value)
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    return value


def _unit_interval(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise _RuleError("must be in [0, 1]")
    return value


def _auto_bool(value: Any) -> Any:
    value = _python_scalar(value)
    if isinstance(value, bool) or (isinstance(value, str) and value == "auto"):
        return value
    raise _RuleError("must be true, false or 'auto'")


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


Int = Annotated[int, Strict(), BeforeValidator(_python_scalar)]
Float = Annotated[float, Strict(), BeforeValidator(_float_scalar)]
Bool = Annotated[bool, Strict(), BeforeValidator(_python_scalar)]
Str = Annotated[str, Strict()]
PosInt = Annotated[Int, Field(ge=1)]
NonNegInt = Annotated[Int, Field(ge=0)]
PosFloat = Annotated[Float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[Float, Field(ge=0, allow_inf_nan=False)]
UnitFloat = Annotated[Float, AfterValidator(_unit_interval)]
"""A float in [0, 1]."""
AutoBool = Annotated[bool | Literal["auto"], BeforeValidator(_auto_bool)]
"""``True``, ``False`` or ``"auto"``."""
LabelMap = Annotated[dict[Str, Str | None], BeforeValidator(_none_is_empty)]
"""Label renames (``None`` as a whole is the empty map)."""

_PYDANTIC_CONFIG = ConfigDict(extra="forbid")


def config_dataclass(
    *, key: str = "", moved: Mapping[str, str] | None = None
) -> Callable[[type[T]], type[T]]:
    """Decorator: a frozen, validating dataclass (see the module docstring).

    Args:
        key: the class's key in a run configuration (``"data"``, ``"quant"``), the prefix of
            the dotted paths in its errors when it is validated on its own; ``""`` for the root.
        moved: removed keys and where their setting lives now (``{"kd_alpha": "kd.alpha"}``);
            an old config that still sets one gets a ConfigError saying so.
    """

    def wrap(cls: type[T]) -> type[T]:
        cls.__config_key__ = key  # type: ignore[attr-defined]
        cls.__config_moved__ = dict(moved or {})  # type: ignore[attr-defined]
        pcls = pydantic.dataclasses.dataclass(cls, frozen=True, config=_PYDANTIC_CONFIG)
        validating_init = pcls.__init__

        @functools.wraps(validating_init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                validating_init(self, *args, **kwargs)
            except _ValidationError as e:
                raise ConfigError(describe(e, pcls, key)) from None

        pcls.__init__ = __init__  # type: ignore[method-assign]
        return pcls  # type: ignore[return-value]

    return wrap


@functools.cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def from_plain(cls: type[T], d: Any, key: str | None = None) -> T:
    """Validate plain data (a mapping from YAML/JSON; lists for tuples) into ``cls``.

    ``key``: prefix of the dotted paths in errors (default: the class's own key).
    """
    key = cls.__config_key__ if key is None else key  # type: ignore[attr-defined]
    try:
        return _adapter(cls).validate_python(d)
    except _ValidationError as e:
        raise ConfigError(describe(e, cls, key)) from None


def to_plain(cfg: Any) -> dict[str, Any]:
    """``cfg`` as plain types only (lists for tuples), the inverse of :func:`from_plain`."""
    return _adapter(type(cfg)).dump_python(cfg, mode="json")


# ----------------------------------------------------------------------------- messages

_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
    "iterable_type": "a list",
    "dict_type": "a mapping",
    "mapping_type": "a mapping",
    "dataclass_type": "a mapping",
    "dataclass_exact_type": "a mapping",
    "dataclass_args_type": "a mapping",
}
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


def describe(error: _ValidationError, cls: type, key: str = "") -> str:
    """Every error of ``error`` (validating ``cls``, dotted paths under ``key``) on one line."""
    errs = error.errors(include_url=False)
    unknown: dict[tuple[Any, ...], list[str]] = {}
    for e in errs:
        if e["type"] in _UNKNOWN:
            unknown.setdefault(tuple(e["loc"][:-1]), []).append(str(e["loc"][-1]))
    parts = [m for parent, names in unknown.items() for m in _unknown(cls, key, parent, names)]
    parts += [_describe_one(e, cls, key) for e in errs if e["type"] not in _UNKNOWN]
    return "; ".join(dict.fromkeys(parts))


def _describe_one(e: Any, cls: type, key: str) -> str:
    kind, ctx, loc = e["type"], e.get("ctx") or {}, tuple(e["loc"])
    if kind == "unexpected_positional_argument":
        return f"{key or cls.__name__}: too many positional arguments ({len(fields(cls))} fields)"
    if loc and isinstance(loc[0], int) and loc[0] < len(fields(cls)):
        loc = (fields(cls)[loc[0]].name, *loc[1:])  # a positional argument of the constructor
    path = dotted(key, loc) or "config"
    got = f", got {_short(e.get('input'))}"
    if kind in _TYPE_WORDS:
        return f"{path} must be {_TYPE_WORDS[kind]}{got}"
    if kind == "literal_error":
        return f"{path} must be one of {ctx['expected']}{got}"
    if kind in _BOUNDS:
        op, bound = _BOUNDS[kind]
        return f"{path} must be {op} {ctx[bound]}{got}"
    if isinstance(ctx.get("error"), _RuleError):
        return f"{path} {ctx['error']}{got}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return f"{path}: {ctx['error']}"
    if kind == "missing":
        return f"{path} is required"
    return f"{path}: {e['msg']}{got}"


def _unknown(cls: type, key: str, parent: tuple[Any, ...], names: list[str]) -> list[str]:
    owner = _class_at(cls, parent)
    where = dotted(key, parent)
    moved = getattr(owner, "__config_moved__", {})
    out = [
        f"{dotted(where, (n,))} has moved to {moved[n]} (set it there)" for n in names if n in moved
    ]
    rest = [n for n in names if n not in moved]
    if rest:
        known = [f.name for f in fields(owner)] if owner is not None else []
        hints = [m for n in rest for m in difflib.get_close_matches(n, known, n=1)]
        closest = f"; closest: {', '.join(dotted(where, (h,)) for h in hints)}" if hints else ""
        out.append(
            f"unknown keys {[dotted(where, (n,)) for n in rest]} (unknown option of "
            f"{where or 'the run config'}; known: {', '.join(known)}{closest})"
        )
    return out


def dotted(key: str, loc: tuple[Any, ...] | list[Any]) -> str:
    """The dotted path of ``loc`` under ``key``.

    >>> dotted("quant", ("word_bits", 0)), dotted("", ("data", "label_map", "a b"))
    ('quant.word_bits[0]', "data.label_map['a b']")
    """
    out = key
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (a key)"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _class_at(cls: type, loc: tuple[Any, ...]) -> type | None:
    """The config class validated at ``loc`` below ``cls`` (None if not a config class)."""
    for part in loc:
        try:
            tp = typing.get_type_hints(cls).get(part) if isinstance(part, str) else None
        except NameError:  # an annotation that cannot be resolved here
            return None
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next((a for a in typing.get_args(tp) if a is not type(None)), None)
        if not (isinstance(tp, type) and is_dataclass(tp)):
            return None
        cls = tp
    return cls


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."


__all__ = [
    "AutoBool",
    "Bool",
    "Float",
    "Int",
    "LabelMap",
    "NonNegFloat",
    "NonNegInt",
    "PosFloat",
    "PosInt",
    "Str",
    "UnitFloat",
    "config_dataclass",
    "describe",
    "dotted",
    "from_plain",
    "to_plain",
]
