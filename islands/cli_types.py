"""The click parameter types of the command line: bounded integers and finite floats.

An absurd count or a nan fails while the options are parsed, with a message naming the
option, not later while a manifest is encoded or a population fills with NaN.
"""
from __future__ import annotations

import math
from typing import Any

import click


INT64_MAX = 2**63 - 1  # what the manifest, checkpoints and pool files can hold (msgpack int64)


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan (which passes every range check) and, unless
    allowed, ±inf: `--grace inf` would never kill a stopped island, `--mutation-sigma inf`
    would fill the population with NaN."""

    name = "finite float"

    def __init__(self, *args: Any, allow_inf: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_inf = allow_inf

    def _describe_range(self) -> str:
        # click would show an unbounded range as "x<=None"
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if math.isnan(rv) or (math.isinf(rv) and not self.allow_inf):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class _Int64Range(click.IntRange):
    """An IntRange whose 64-bit ceiling is enforced but not shown in --help: nobody needs
    `[x<=9223372036854775807]` on every count (a lower bound or a smaller ceiling still shows)."""

    _checking = False  # True while a value is converted: its error names the whole range

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        self._checking = True
        try:
            return super().convert(value, param, ctx)
        finally:
            self._checking = False

    def _describe_range(self) -> str:
        if self.max != INT64_MAX or self._checking:
            return super()._describe_range()
        if self.min is None:
            return ""
        return f"x{'>' if self.min_open else '>='}{self.min}"


def Int64(min: int | None = None, max: int = INT64_MAX) -> click.IntRange:  # noqa: N802 (a type)
    """An integer option bounded to 64 bits, so an absurd count fails here, naming the option,
    not later while encoding the manifest."""
    return _Int64Range(min=min, max=max)
