"""`--algorithm-param KEY=VALUE` settings turned into an algorithm's frozen config.

Values arrive as text from a command line or as numbers from a manifest; each is parsed to
the type its dataclass field declares, unknown names are refused with the list of known
ones, and the config's own `__post_init__` then checks ranges. One parser for every
algorithm, so `--vary` and the CLI accept the same spellings everywhere.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping, TypeVar

from islands.errors import ConfigError
from islands.problems.base import real_param

C = TypeVar("C")

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_NONE = ("none", "auto", "")


def config_from_params(cls: type[C], params: Mapping[str, Any] | None, where: str) -> C:
    """`cls(**params)` with text parsed by field type; ConfigError naming `where` otherwise."""
    params = dict(params or {})
    types = {f.name: str(f.type) for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(types))
    if unknown:
        raise ConfigError(f"unknown {where} setting(s): {', '.join(unknown)}; known: {', '.join(types)}")
    return cls(**{name: _parse(where, name, types[name], value) for name, value in params.items()})


def _parse(where: str, name: str, typ: str, value: Any) -> Any:
    """One value as the field type `typ` ("float", "int | None", "bool", "str", ...) says."""
    base, optional = typ.replace(" ", "").replace("|None", ""), "None" in typ
    if not isinstance(value, str):
        if base == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value  # the config's own checks refuse a wrong type, quoting it
    text = value.strip().lower()
    if optional and text in _NONE:
        return None
    if base == "str":
        return text
    if base == "bool":
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
    number = real_param(f"{where}: {name}", value)  # finite, or a ConfigError quoting the value
    if base == "int":
        if not number.is_integer():
            raise ConfigError(f"{where}: {name} must be an integer, got {value!r}")
        return int(number)
    return number
