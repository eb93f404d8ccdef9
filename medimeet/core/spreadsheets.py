"""CSV for spreadsheets, safe to open: a cell that starts like a formula (= + - @, and tab or
carriage return, which some spreadsheets skip before one) is prefixed with ' so it is shown as
text, never run (CSV injection). Used by every CSV export (records audit, dashboard reports)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(cell):
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    """CSV text line by line (for a streaming response), each cell made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
