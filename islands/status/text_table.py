"""A fixed-width text table for `islands status` with many islands.

rich's `Table` measures and wraps every cell, about 0.8 ms per row: 3 s for 4,096 islands. Past
`RICH_ROWS` rows the island table is laid out here instead, in one pass: each column as wide as
its widest cell, numbers right-aligned, the state cell in its colour, the last column (overrides
and notes) left as it is. The same columns and cells as the rich table.
"""
from __future__ import annotations

from typing import Any, Sequence

RICH_ROWS = 200  # island rows up to which rich lays the table out


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[str], styles: Any) -> Any:
    """A rich `Text` of `rows` under `columns`: cells are str, or (str, style) for a coloured
    one; columns named in `left` are left-aligned, the others right-aligned; a last column
    named in `left` is not padded (it may be long)."""
    from rich.text import Text  # lazy: rich loads only when a table is drawn (`status --json` stays fast)

    plain = [[c if isinstance(c, str) else c[0] for c in row] for row in rows]
    widths = [max([len(columns[i])] + [len(r[i]) for r in plain]) for i in range(len(columns))]
    last = len(columns) - 1

    def cell(i: int, text: str) -> str:
        if i == last and columns[i] in left:
            return text
        return text.ljust(widths[i]) if columns[i] in left else text.rjust(widths[i])

    out = Text()
    out.append("  ".join(cell(i, c) for i, c in enumerate(columns)).rstrip(), "bold underline")
    for row, texts in zip(rows, plain):
        out.append("\n")
        for i, (c, t) in enumerate(zip(row, texts)):
            out.append(("  " if i else "") + cell(i, t), None if isinstance(c, str) else c[1])
    return out
