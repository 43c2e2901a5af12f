"""Text for people: the comparison table, markdown-safe text, spreadsheet-safe CSV cells."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


def markdown_text(value: Any) -> str:
    """`value` as inert text inside markdown: one line, no table breaks, no HTML.

    Data (column names, cell values, file names) goes through this before it
    lands in `eda.md` or `report.md`, so a header such as `a|b<script>` cannot
    break a table or inject markup.

    Example:
        >>> markdown_text("a|b\\n<i>c</i>")
        'a\\\\|b &lt;i&gt;c&lt;/i&gt;'
    """
    text = " ".join(str(value).splitlines()) if value is not None else ""
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return text


def spreadsheet_safe(frame: Any) -> Any:
    """A copy of a DataFrame whose text cells cannot run as spreadsheet formulas (the OWASP rule).

    A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets
    a leading `'`, unless the whole cell is a number (a class label `-1` stays
    `-1`: a spreadsheet reads it as the number it is, and runs nothing). Applied
    to every CSV kmodels writes from data it did not make (prediction files).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"label": ["=cmd|' -C calc'!A0", "-1", "+2.5e3", "a"], "p": [-0.5, 1.0, 0.1, 0.2]})
        >>> spreadsheet_safe(frame)["label"].tolist()
        ["'=cmd|' -C calc'!A0", '-1', '+2.5e3', 'a']
    """
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith("str"):
            out[column] = [f"'{v}" if isinstance(v, str) and v[:1] in _FORMULA_STARTS and not _is_number(v) else v
                           for v in out[column]]
    return out


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _is_number(text: str) -> bool:
    """Whether `text` is exactly a decimal number (no spaces, no formula characters after the sign)."""
    return _NUMBER.fullmatch(text) is not None


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table (markdown pipe style) of `rows`; text cells are escaped (`markdown_text`)."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}"
        return markdown_text(v)

    body = [[cell(r.get(c)) for c in columns] for r in rows]
    header = [markdown_text(c) for c in columns]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(header)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(b) for b in body)])
