"""Keras ``CSVLogger`` files and pandas dumps of ``History.history``.

Real logs are messy, so the reader accepts Windows line endings, blank lines, ``;`` or
tab separators, quoted cells (a stage name with a comma, CSVLogger's ``"[0.1, 0.2]"``
vector cells), ``nan``/``inf`` values, an unnamed first column (``DataFrame.to_csv``'s
index), upper-case headers, a header repeated where files were concatenated, duplicate
column names (the first is kept), a separator at the end of every line, decimal commas
in a ``;``- or tab-separated file and a last row cut short by a killed process. Epoch
restarts and reversed rows are put in order by `kadvisor.advisor.readers.align.order_rows`.
"""

from __future__ import annotations

import csv
import re

from kadvisor.advisor.readers.align import order_rows
from kadvisor.advisor.readers.roles import canonical
from kadvisor.advisor.readers.run import Run, build, to_float
from kadvisor.advisor.readers.safeio import read_text
from kadvisor.errors import InputError

csv.field_size_limit(1 << 24)


def parse_csv_text(text: str, source: str = "<text>", columns: dict | None = None) -> Run:
    """Parses a ``CSVLogger``-style table: header first, one row per epoch.

    Args:
        text: The file content.
        source: Name used in messages.
        columns: ``--columns`` overrides (role → logged name).

    Returns:
        The run (the last one, when several were appended).

    Raises:
        InputError: No header, no rows, or no loss/metric column.
    """
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"{source}: empty file, expected a CSV training log with a header row")
    delimiter = max((";", "\t", ","), key=lines[0].count)
    if lines[0].count(delimiter) == 0 and len(lines) == 1:
        raise InputError(f"{source}: not a training log (one line without separators)")
    table = list(csv.reader(lines, delimiter=delimiter, skipinitialspace=True))
    header = [h.strip().strip('"').strip("'") for h in table[0]]
    if any(to_float(h) is not None for h in header if h):
        raise InputError(f"{source}: the first row must be a header of column names, got numbers ({lines[0][:60]})")
    notes: list[str] = []
    skip = set()
    if header and header[0] in ("", "Unnamed: 0", "index"):
        skip.add(0)  # pandas' index column
        notes.append("the unnamed first column (a pandas index) is not used")
    last = len(header) - 1
    if last > 0 and not header[last] and all(len(r) <= last or not r[last].strip() for r in table[1:]):
        skip.add(last)  # every line ends with a separator: an empty column, not a broken header
        notes.append("every line ends with a separator: the empty last column is not used")
    for i, name in enumerate(header):
        if i not in skip and not (name and name.isprintable()):
            raise InputError(f"{source}: not a training log (empty or unreadable column name in column {i + 1} of the header)")
    first: dict[str, int] = {}
    for i, name in enumerate(header):
        if i not in skip:
            if name in first:
                skip.add(i)
                notes.append(f"column '{name}' appears twice in the header: the first (column {first[name] + 1}) is used")
            else:
                first[name] = i
    body, repeats = [], 0
    for row in table[1:]:
        if [c.strip() for c in row] == header:
            repeats += 1
            body.append(None)  # a boundary between concatenated files
            continue
        body.append(row)
    if repeats:
        notes.append(f"the header line is repeated {repeats} time{'s' if repeats > 1 else ''} (files concatenated)")
    rows = [r for r in body if r is not None]
    if len(rows) > 1 and len(rows[-1]) < len(header):
        rows = rows[:-1]  # the last row was cut short (a training process killed mid-write)
        notes.append("the last row is incomplete (the writer was stopped mid-row): not used")
    if not rows:
        raise InputError(f"{source}: a header but no epochs; expected one row per epoch")
    if delimiter != "," and _uses_decimal_commas(rows):
        rows = [[c.replace(",", ".") if _DECIMAL_COMMA.match(c.strip()) else c for c in r] for r in rows]
        notes.append("numbers are written with decimal commas (0,5): read as 0.5")
    epoch_col = next((i for n, i in first.items() if n.lower() == "epoch"), None)
    if epoch_col is not None:
        loss_col = next((i for n, i in first.items() if canonical(n)[0] == "loss"), None)
        cell = lambda r, i: to_float(r[i]) if i is not None and i < len(r) else None  # noqa: E731
        keep, relabel, order_notes = order_rows([cell(r, epoch_col) for r in rows],
                                                [cell(r, loss_col) for r in rows] if loss_col is not None else None)
        rows = [rows[i] for i in keep]
        if relabel is not None:
            rows = [[*r[:epoch_col], f"{e:g}", *r[epoch_col + 1:]] for r, e in zip(rows, relabel)]
        notes += order_notes
    elif repeats:
        last = max(i for i, r in enumerate(body) if r is None)
        rows = [r for r in body[last + 1:] if r is not None] or rows
        notes.append(f"no epoch column: the rows after the last repeated header are diagnosed ({len(rows)} rows)")
    raw = {name: [row[i] if i < len(row) else None for row in rows] for name, i in first.items()}
    return build(raw, source, notes, columns)


_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+([eE][+-]?\d+)?$")


def _uses_decimal_commas(rows: list[list[str]]) -> bool:
    """Whether a ``;``- or tab-separated table writes its numbers as ``0,5`` (a
    spreadsheet in a European locale): some cells look like that and no cell holds a
    point-decimal number, so the two conventions are not mixed."""
    cells = [c.strip() for r in rows for c in r]
    return any(_DECIMAL_COMMA.match(c) for c in cells) and not any(
        "." in c and to_float(c) is not None for c in cells)


def detect(path: str, head: str) -> bool:
    """Any file that is not recognised as something else."""
    return True


def read(path: str, columns: dict | None = None) -> Run:
    """Reads a CSV training log file."""
    run = parse_csv_text(read_text(path), path, columns)
    run.format = "csv"
    return run
