"""Fitted table preprocessing as a graph of column operations, so an export can take raw rows.

A preprocessor that can run inside an exported model says so with one method,
`to_graph(columns) -> columns`: it receives its input columns as `Column`
expressions (name -> expression, in order) and returns its output columns the same
way, in the order `transform` makes them. The expressions are built from a handful
of operations that TensorFlow, ONNX and NumPy all have: arithmetic, a missing-value
test, `where`, a string lookup table and a date parser. `kmodels.task.export` turns
them into TensorFlow ops (SavedModel) or ONNX nodes; `evaluate` runs them on NumPy,
which is how the tests hold each preprocessor's graph to its `transform`.

Raw inputs are typed by their first use: `as_number(column)` makes it a float64
input (NaN for missing), `as_string(column)` a string input (`""` for missing).

Example:
    >>> import numpy as np
    >>> x = column("a")
    >>> out = {"a": where(is_missing(as_number(x)), 2.0, as_number(x)) * 10}
    >>> evaluate(out, {"a": np.array([1.0, np.nan])})["a"].tolist()
    [10.0, 20.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kmodels.errors import ConfigError

NUMBER, STRING, BOOL, RAW = "number", "string", "bool", "raw"
#: The string a missing value is given to a string input (read_csv reads empty cells as missing).
MISSING_STRING = ""


class Column:
    """One column as an expression: an operation on other expressions (immutable)."""

    __slots__ = ("op", "args", "attrs", "kind")

    def __init__(self, op: str, args: Sequence[Column] = (), kind: str = NUMBER, **attrs: Any) -> None:
        self.op, self.args, self.kind, self.attrs = op, tuple(args), kind, attrs

    def _binary(self, op: str, other: Any, swap: bool = False) -> Column:
        other = other if isinstance(other, Column) else const(other)
        a, b = (other, self) if swap else (self, other)
        for side in (a, b):
            if side.kind != NUMBER:
                raise TypeError(f"{op} needs numbers; received a {side.kind} column ({side.op}).")
        return Column(op, (a, b))

    def __add__(self, other: Any) -> Column:
        return self._binary("add", other)

    def __radd__(self, other: Any) -> Column:
        return self._binary("add", other, swap=True)

    def __sub__(self, other: Any) -> Column:
        return self._binary("sub", other)

    def __rsub__(self, other: Any) -> Column:
        return self._binary("sub", other, swap=True)

    def __mul__(self, other: Any) -> Column:
        return self._binary("mul", other)

    def __rmul__(self, other: Any) -> Column:
        return self._binary("mul", other, swap=True)

    def __truediv__(self, other: Any) -> Column:
        return self._binary("div", other)

    def __repr__(self) -> str:
        return f"Column({self.op}, {self.kind}{', ' + self.attrs['name'] if 'name' in self.attrs else ''})"


def column(name: str) -> Column:
    """A raw input column, typed by how it is first used (`as_number` or `as_string`)."""
    return Column("column", kind=RAW, name=str(name))


def const(value: float) -> Column:
    return Column("const", value=float(value))


def _read_as(x: Column, kind: str, who: str, what: str) -> Column:
    """`x` read as `kind`: unchanged if it is one already; a raw column becomes an input of that kind."""
    if x.kind == kind:
        return x
    if x.op == "column":
        return Column("input", kind=kind, name=x.attrs["name"])
    raise TypeError(f"{who}: a {x.kind} column cannot be read as {what}.")


def as_number(x: Column) -> Column:
    """`x` as float64 numbers: a raw column becomes a number input (missing: NaN)."""
    return _read_as(x, NUMBER, "as_number", "numbers")


def as_string(x: Column) -> Column:
    """`x` as text: a raw column becomes a string input (missing: the empty string)."""
    return _read_as(x, STRING, "as_string", "text")


def is_missing(x: Column) -> Column:
    """True where a number is NaN or infinite, or a string is empty."""
    return Column("is_missing", (x,), kind=BOOL)


def where(cond: Column, a: Column | float, b: Column | float) -> Column:
    a, b = (v if isinstance(v, Column) else const(v) for v in (a, b))
    if cond.kind != BOOL or a.kind != NUMBER or b.kind != NUMBER:
        raise TypeError("where(cond, a, b) needs a boolean condition and two number columns.")
    return Column("where", (cond, a, b))


def to_float(cond: Column) -> Column:
    """A boolean column as 0.0 / 1.0."""
    if cond.kind != BOOL:
        raise TypeError("to_float needs a boolean column.")
    return Column("to_float", (cond,))


def _unary(op: str, x: Column) -> Column:
    if x.kind != NUMBER:
        raise TypeError(f"{op} needs a number column.")
    return Column(op, (x,))


def floor(x: Column) -> Column:
    return _unary("floor", x)


def log1p(x: Column) -> Column:
    return _unary("log1p", x)


def sqrt(x: Column) -> Column:
    return _unary("sqrt", x)


def maximum(x: Column, value: float) -> Column:
    """The larger of `x` and `value` (NaN stays NaN, as `np.clip`)."""
    return Column("maximum", (_unary("identity", x), const(value)))


def compare(x: Column, op: str, value: Column | float) -> Column:
    """`x < value` (`op` "lt"), `x > value` ("gt") or `x == value` ("eq"): False where either is NaN."""
    if op not in ("lt", "gt", "eq"):
        raise ValueError(f"compare: op {op!r} is not one of lt, gt, eq.")
    value = value if isinstance(value, Column) else const(value)
    return Column(op, (_unary("identity", x), value), kind=BOOL)


def either(a: Column, b: Column) -> Column:
    """Logical or of two boolean columns."""
    if a.kind != BOOL or b.kind != BOOL:
        raise TypeError("either needs two boolean columns.")
    return Column("or", (a, b), kind=BOOL)


def lookup(x: Column, table: Mapping[str, float], default: float, missing: float | None = None) -> Column:
    """A number for each string: `table[value]`, `missing` for the empty string (missing), else `default`."""
    if x.kind != STRING:
        raise TypeError("lookup needs a string column (as_string).")
    keys = [str(k) for k in table]
    values = [float(v) for v in table.values()]
    if missing is not None and MISSING_STRING not in keys:
        keys.append(MISSING_STRING)
        values.append(float(missing))
    return Column("lookup", (x,), keys=tuple(keys), values=tuple(values), default=float(default))


#: Dates a graph parses: `d/m/yy`, `d/m/yyyy` (`/`, `.` or `-` between the parts) or ISO `yyyy-mm-dd`.
DATE_DMY = r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{2}|[0-9]{4})"
DATE_ISO = r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
#: Years before this are placeholders (`1/1/1800`): missing.
MIN_YEAR = 1900
DATE_FIELDS = ("year", "month", "weekday", "days")


def date_parts(x: Column, month_first: bool = False, today: Any = None,
               reference: Column | None = None) -> tuple[Column, Column, Column, Column]:
    """Year, month, weekday (Monday = 0) and days since 1970-01-01 of date strings, NaN where a value is not a date.

    A two-digit year is read in the century of the row's `reference` (days since 1970, e.g.
    another date column's `days`; where it is NaN, or without one: `today`, by default the day
    the graph is built, which an export fixes), or the century before when that would be later.
    """
    if x.kind != STRING:
        raise TypeError("date_parts needs a string column (as_string).")
    import datetime

    day = int(np.datetime64(today or datetime.date.today(), "D").astype("int64"))
    args = (x,) if reference is None else (x, _unary("identity", reference))
    return tuple(Column("date_part", args, field=f, month_first=bool(month_first), today=day)  # type: ignore[return-value]
                 for f in DATE_FIELDS)


def _parse_dates(values: np.ndarray, month_first: bool, today: int, reference: np.ndarray | None = None) -> np.ndarray:
    """(n, 4) year, month, weekday, days as float64 (NaN: not a date), per `date_parts`."""
    import datetime
    import re

    dmy, iso = re.compile(DATE_DMY), re.compile(DATE_ISO)
    epoch = datetime.date(1970, 1, 1)
    out = np.full((len(values), 4), np.nan)
    for i, value in enumerate(values):
        ref = today if reference is None or not np.isfinite(reference[i]) else int(reference[i])
        today_date = epoch + datetime.timedelta(days=ref)
        text = str(value).strip(" \t\n\r\f\v")
        if (m := dmy.fullmatch(text)) is not None:
            d, mo, y = (int(g) for g in m.groups())
            if month_first:
                d, mo = mo, d
            two = len(m.group(3)) == 2
        elif (m := iso.fullmatch(text)) is not None:
            y, mo, d = (int(g) for g in m.groups())
            two = False
        else:
            continue
        try:
            if two:
                century = today_date.year // 100 * 100
                date = datetime.date(century + y, mo, d)
                if date > today_date:
                    date = datetime.date(century - 100 + y, mo, d)
            else:
                date = datetime.date(y, mo, d)
        except ValueError:
            continue
        if date.year >= MIN_YEAR:
            out[i] = (date.year, date.month, date.weekday(), (date - epoch).days)
    return out


# ---- the whole pipeline ----------------------------------------------------------------------------
class NotExportable(ConfigError):
    """A fitted preprocessing step has no graph form (it cannot run inside an exported model)."""


def pipeline_graph(pipeline: Any, columns: Sequence[str]) -> tuple[dict[str, str], dict[str, Column]]:
    """The raw inputs (name -> `number` / `string`) and the output feature columns of a fitted pipeline.

    `pipeline` is a scikit-learn `Pipeline` (or one step) of steps that have `to_graph`;
    `columns` are the raw feature columns it was fitted on, in order.
    """
    steps = [s for _, s in getattr(pipeline, "steps", [(None, pipeline)]) if s not in (None, "passthrough")]
    current: dict[str, Column] = {str(c): column(c) for c in columns}
    for step in steps:
        if getattr(step, "drops_rows", False):
            continue  # row filters run on the training table only; predict keeps every row
        to_graph = getattr(step, "to_graph", None)
        if to_graph is None:
            raise NotExportable(f"The preprocessing step {type(step).__name__} has no graph form (to_graph), so it "
                                "cannot run inside an exported model. Export the network alone (give the run's "
                                "model.keras as the source), or serve the run directory with `kmodels serve`.")
        current = dict(to_graph(current))
    current = {name: as_number(node) if node.kind == RAW else node for name, node in current.items()}
    for name, node in current.items():  # a raw column left as it came is read as numbers, as predict does
        if node.kind != NUMBER:
            raise NotExportable(f"After preprocessing, column {name!r} is {node.kind}, not a number; the model "
                                "takes numbers. Add an encoding step (one_hot, frequency_encode).")
    kinds = input_kinds(current.values())
    order = {str(c): i for i, c in enumerate(columns)}
    return dict(sorted(kinds.items(), key=lambda item: order.get(item[0], len(order)))), current


def input_kinds(outputs: Sequence[Column] | Any) -> dict[str, str]:
    """The raw inputs the expressions read, each as `number` or `string`, in first-use order."""
    kinds: dict[str, str] = {}
    for node in walk(outputs):
        if node.op == "input":
            name, dtype = node.attrs["name"], node.kind
            if kinds.setdefault(name, dtype) != dtype:
                raise NotExportable(f"Column {name!r} is read both as numbers and as text by the preprocessing; "
                                    "an exported model takes each column as one type.")
    return kinds


def walk(outputs: Any) -> list[Column]:
    """Every expression `outputs` depend on, each once, inputs before their users."""
    order: list[Column] = []
    seen: set[int] = set()
    stack = [(node, False) for node in reversed(list(outputs))]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((arg, False) for arg in reversed(node.args) if id(arg) not in seen)
    return order


def raw_inputs(frame: Any, kinds: Mapping[str, str]) -> dict[str, np.ndarray]:
    """A DataFrame's columns in the form an export takes: float64 (NaN for missing, text not a number too) or
    str (`""` for missing)."""
    import pandas as pd

    out = {}
    for name, kind in kinds.items():
        values = frame[name]
        if kind == NUMBER:
            out[name] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            text = values.astype(object)
            out[name] = np.where(text.isna().to_numpy(), MISSING_STRING, text.astype(str).to_numpy()).astype(object)
    return out


def evaluate(outputs: Mapping[str, Column], inputs: Mapping[str, np.ndarray],
             rows: int | None = None) -> dict[str, np.ndarray]:
    """Run the expressions on NumPy arrays (`raw_inputs`): the reference the exporters are held to."""
    values: dict[Any, Any] = {}
    for node in walk(outputs.values()):
        a = [values[id(arg)] for arg in node.args]
        op = node.op
        if op == "input":
            raw = np.asarray(inputs[node.attrs["name"]])
            v = raw.astype(np.float64) if node.kind == NUMBER else raw.astype(object)
        elif op == "const":
            v = np.float64(node.attrs["value"])
        elif op == "is_missing":
            v = (a[0] == MISSING_STRING) if node.args[0].kind == STRING else ~np.isfinite(a[0])
        elif op == "where":
            v = np.where(a[0], a[1], a[2])
        elif op == "to_float":
            v = np.asarray(a[0], dtype=np.float64)
        elif op == "lookup":
            table = dict(zip(node.attrs["keys"], node.attrs["values"], strict=True))
            v = np.array([table.get(s, node.attrs["default"]) for s in a[0]], dtype=np.float64)
        elif op == "date_part":
            key = (*(id(arg) for arg in node.args), node.attrs["month_first"], node.attrs["today"])
            if key not in values:
                values[key] = _parse_dates(a[0], node.attrs["month_first"], node.attrs["today"],  # type: ignore[index]
                                           np.broadcast_to(a[1], len(a[0])) if len(a) > 1 else None)
            v = values[key][:, DATE_FIELDS.index(node.attrs["field"])]  # type: ignore[index]
        elif op in _NUMPY:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = _NUMPY[op](*a)
        else:
            raise NotExportable(f"Unknown graph operation {op!r}.")
        values[id(node)] = v
    n = rows if rows is not None else len(next(iter(inputs.values()))) if inputs else 0
    return {name: np.broadcast_to(values[id(node)], (n,)).astype(np.float64) for name, node in outputs.items()}


_NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "floor": np.floor,
          "log1p": np.log1p, "sqrt": np.sqrt, "identity": lambda x: x, "maximum": np.maximum, "lt": np.less, "gt": np.greater,
          "eq": np.equal, "or": np.logical_or}
