"""Reading CSV files with errors that say what is wrong and how to fix it."""

from __future__ import annotations

import csv
import gzip
import json
import lzma
import zipfile
import zlib
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
    _check_line_lengths(path)
    try:
        frame = pd.read_csv(path, sep=sep, encoding=encoding, **kwargs)
    except UnicodeDecodeError as exc:
        raise DataError(f"{str(path)!r} is not valid {encoding} text ({_first_bad_byte(path, encoding) or exc.reason}). "
                        "Re-save it as UTF-8 (`iconv -f latin1 -t utf-8 in.csv > out.csv`), or name its encoding: "
                        "`--set data.encoding=latin-1` for the csv dataset.") from None
    except (gzip.BadGzipFile, zipfile.BadZipFile, lzma.LZMAError, zlib.error, EOFError) as exc:
        raise DataError(f"{str(path)!r} is not a readable {path.suffix or 'compressed'} file ({exc}); pandas "
                        "picks the decompression from the name. Rename it to .csv if it is plain text, or "
                        "re-compress it.") from None
    except OSError as exc:
        if "compressed" not in str(exc) and "Invalid data stream" not in str(exc):
            raise
        raise DataError(f"{str(path)!r} is not a readable {path.suffix} file ({exc}); rename it to .csv if it is "
                        "plain text, or re-compress it.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{str(path)!r} has no columns; expected a CSV with a header row.") from None
    except pd.errors.ParserError as exc:
        hint = _delimiter_hint(path, sep, encoding)
        raise DataError(f"{str(path)!r} could not be parsed as CSV: {str(exc).strip()}" + (f". {hint}" if hint else "")) from None
    if frame.shape[1] == 1:
        hint = _delimiter_hint(path, sep, encoding)
        if hint:
            raise DataError(f"{str(path)!r} has a single column {str(frame.columns[0])[:60]!r}. {hint}")
    if kwargs.get("header", "infer") in ("infer", 0) and "names" not in kwargs:
        _check_unique_header(path, sep, encoding)
    if frame.empty:
        raise DataError(f"{str(path)!r} has a header but no data rows.")
    return frame


#: The longest line (row) a CSV may hold: a real row is kilobytes; a 200 MB line would cost gigabytes to parse.
MAX_LINE_BYTES = 4 * 2**20


def _check_line_lengths(path: Path, limit: int = MAX_LINE_BYTES) -> None:
    """Refuse a plain-text file with a line over `limit` bytes before pandas parses it (compressed files are
    left to pandas). Reads the file in blocks; vectorised, so a 1,000,000-row file costs about a tenth of a second.
    """
    import numpy as np

    if path.suffix.lower() in (".gz", ".bz2", ".xz", ".zip", ".zst", ".tar"):
        return
    run, line = 0, 1
    with open(path, "rb") as f:
        while block := f.read(8 * 2**20):
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            if len(ends) == 0:
                run += len(block)
            else:
                if run + int(ends[0]) > limit:
                    break
                gaps = np.diff(ends) - 1
                if len(gaps) and int(gaps.max()) > limit:
                    line += int(np.argmax(gaps)) + 1
                    break
                line += len(ends)
                run = len(block) - int(ends[-1]) - 1
            if run > limit:
                break
        else:
            return
    raise DataError(f"{str(path)!r}: line {line:,} is longer than {limit:,} bytes; a CSV row is "
                    "a few kilobytes. Is it a CSV file (or one with a broken quote)?")


def _header_line(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        return f.readline()


def _delimiter_hint(path: Path, sep: str, encoding: str) -> str | None:
    """'It looks ';'-delimited ...' when the header row splits better on another delimiter, else None."""
    header = _header_line(path, encoding)
    try:
        sniffed = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return None
    if sniffed == sep or header.count(sniffed) <= header.count(sep):
        return None
    value = json.dumps(sniffed)
    return (f"It looks {sniffed!r}-delimited, not {sep!r}-delimited: set the delimiter, "
            f"e.g. `--set 'data.sep={value}'` on the command line or `sep={value}` in the spec's [data].")


def _check_unique_header(path: Path, sep: str, encoding: str) -> None:
    """A `DataError` naming the duplicated column names (pandas would rename them `X.1` silently)."""
    if len(sep) != 1:
        return
    row = next(csv.reader([_header_line(path, encoding)], delimiter=sep), [])
    names = [n.strip() for n in row]
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i + 1)
    dup = {n: cols for n, cols in seen.items() if len(cols) > 1}
    if dup:
        listed = "; ".join(f"{n!r} in columns {', '.join(map(str, cols))}" for n, cols in list(dup.items())[:5])
        raise DataError(f"{str(path)!r} has duplicated header names: {listed}. "
                        "Give every column a distinct name in the header row.")


def _first_bad_byte(path: Path, encoding: str, chunk: int = 1 << 20) -> str | None:
    """Where the first byte that is not valid `encoding` is: 'byte 161 (line 3): 0xe9'."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines = 0, 1
    with open(path, "rb") as f:
        while block := f.read(chunk):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                pending = len(decoder.getstate()[0]) if hasattr(decoder, "getstate") else 0
                at = exc.start - pending  # the error's offset counts bytes held over from the last block
                at = max(at, 0)
                line = lines + block[:at].count(b"\n")
                return f"first bad byte at offset {offset + at}, line {line}: 0x{block[at:at + 1].hex()}, {exc.reason}"
            offset += len(block)
            lines += block.count(b"\n")
    return None
