"""Making cells safe to open in a spreadsheet (CSV formula injection)."""

from __future__ import annotations

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """Prefix a cell that a spreadsheet would treat as a formula with a single quote (OWASP).

    Cells starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return are affected; any other
    cell is returned unchanged. Undecodable bytes (kept as surrogate escapes) become U+FFFD.
    """
    try:
        text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = value.encode("utf-8", "replace").decode("utf-8")
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text
