"""Reading CSV files with errors that say what is wrong and how to fix it."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from kmodels.errors import DataError


def read_csv(path: str | Path, *, encoding: str = "utf-8", **kwargs) -> pd.DataFrame:
    """Read a CSV file into a DataFrame.

    Empty files, header-only files, a delimiter other than the one expected
    and non-UTF-8 bytes each raise a `DataError` naming the file and the fix.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = p.write_text("a,b\\n1,x\\n")
        >>> read_csv(p).shape
        (1, 2)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{str(path)!r} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise DataError(f"{str(path)!r} is empty (0 bytes); expected a CSV with a header row.")
    sep = kwargs.pop("sep", ",")
    try:
        frame = pd.read_csv(path, sep=sep, encoding=encoding, **kwargs)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{str(path)!r} is not valid {encoding} text (byte {exc.start}: {exc.reason}). "
            "Re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{str(path)!r} has no columns; expected a CSV with a header row.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{str(path)!r} could not be parsed as CSV: {exc}") from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        try:
            sniffed = csv.Sniffer().sniff(header, delimiters=";\t|").delimiter
        except csv.Error:
            sniffed = None
        if sniffed and sniffed != sep:
            raise DataError(
                f"{str(path)!r} has a single column {header[:60]!r}: it looks {sniffed!r}-delimited, "
                f"not {sep!r}-delimited. Convert it to comma-separated values."
            )
    if frame.empty:
        raise DataError(f"{str(path)!r} has a header but no data rows.")
    return frame
