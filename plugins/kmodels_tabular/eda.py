"""Exploratory data analysis of a raw table, before anything changes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kmodels.api import Table, duplicate_mask, format_table, markdown_text, pyplot


def eda(table: Table, placeholders: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Rows, columns, dtypes, missing values, duplicates, target balance, placeholders, ranges.

    Example:
        >>> import pandas as pd
        >>> from kmodels.api import Table, duplicate_mask
        >>> r = eda(Table(pd.DataFrame({"x": [1, 1, None], "y": ["a", "a", "b"]}), "y"))
        >>> r["rows"], r["duplicate_rows"], r["missing"]["x"]["count"]
        (3, 1, 1)
    """
    f = table.frame
    n = len(f)
    missing = f.isna().sum()
    problem = table.problem_type()
    if problem.is_classification:
        counts = f[table.target].value_counts(dropna=False)
        target: dict[str, Any] = {"column": table.target, "problem": problem.kind,
                                  "counts": {("<missing>" if pd.isna(k) else str(k)): int(v)
                                             for k, v in counts.head(50).items()}}
        if len(counts) > 50:
            target["other_values"] = int(len(counts) - 50)
        if problem.per_label_threshold:  # label sets: how many rows carry each label (the bars show these)
            target["labels"] = {**problem.label_counts(f[table.target]),
                                "<missing>": int(f[table.target].isna().sum())}
    else:
        values = pd.to_numeric(f[table.target], errors="coerce")
        described = values.describe()
        target = {"column": table.target, "problem": problem.kind, "counts": {"<missing>": int(values.isna().sum())},
                  "summary": {str(k): _num(v) for k, v in described.items()}}
    report: dict[str, Any] = {
        "source": table.source,
        "rows": n,
        "columns": len(f.columns),
        "dtypes": {str(c): str(t) for c, t in f.dtypes.items()},
        "missing": {str(c): {"count": int(missing[c]), "percent": round(100 * missing[c] / max(n, 1), 3)}
                    for c in f.columns},
        "duplicate_rows": int(duplicate_mask(f).sum()),
        "target": target,
        "placeholders": {},
        "numeric": {},
        "notes": list(table.notes),
    }
    if table.group is not None:
        codes = table.group_codes()  # the split reuses these
        report["groups"] = {"column": table.group, "distinct": int(np.count_nonzero(np.bincount(codes[codes >= 0])))}
    for col, values in (placeholders or {}).items():
        if col in f.columns:
            count = int(f[col].isin(list(values)).sum())
            report["placeholders"][col] = {"values": list(values), "count": count,
                                           "percent": round(100 * count / max(n, 1), 3)}
    for col in f.columns:
        if pd.api.types.is_numeric_dtype(f[col]) and col != table.target:
            s = f[col]
            report["numeric"][str(col)] = {
                "min": _num(s.min()), "median": _num(s.median()), "max": _num(s.max()),
                "zeros": int((s == 0).sum()), "negative": int((s < 0).sum()),
            }
    return report


def _num(v: Any) -> float | None:
    return None if pd.isna(v) else float(v)


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The short summary printed at the start of a run."""
    missing = {c: m["count"] for c, m in report["missing"].items() if m["count"]}
    lines = [
        f"EDA: {report['rows']:,} rows x {report['columns']} columns from {report['source']}",
        f"EDA: missing values: {missing or 'none'}",
        f"EDA: duplicate rows: {report['duplicate_rows']:,}",
        f"EDA: target {report['target']['column']}: "
        + (str(report["target"].get("labels", report["target"]["counts"])) if "summary" not in report["target"] else
           ", ".join(f"{k} {v:.4g}" for k, v in report["target"]["summary"].items() if v is not None)),
    ]
    for col, p in report["placeholders"].items():
        lines.append(f"EDA: placeholder {p['values']} in {col}: {p['count']:,} rows ({p['percent']:.1f}%)")
    if "groups" in report:
        lines.append(f"EDA: {report['groups']['distinct']:,} distinct {report['groups']['column']}")
    lines += [f"EDA: note: {n}" for n in report["notes"]]
    return lines


def markdown(report: Mapping[str, Any]) -> str:
    rows = [{"column": c, "dtype": report["dtypes"][c], "missing": m["count"], "missing %": m["percent"]}
            for c, m in report["missing"].items()]
    numeric = [{"column": c, **v} for c, v in report["numeric"].items()]
    target = [{"value": k, "rows": v} for k, v in report["target"]["counts"].items()]
    if "summary" in report["target"]:
        target = [{"value": k, "rows": v} for k, v in report["target"]["summary"].items()] + target
    parts = [
        f"# EDA of {markdown_text(report['source'])}", "",
        f"{report['rows']:,} rows, {report['columns']} columns, {report['duplicate_rows']:,} exact duplicate rows.", "",
        "## Columns", "", format_table(rows, ["column", "dtype", "missing", "missing %"]), "",
        f"## Target {markdown_text(report['target']['column'])}", "", format_table(target, ["value", "rows"]), "",
    ]
    if report["placeholders"]:
        ph = [{"column": c, "values": ", ".join(p["values"]), "rows": p["count"], "%": p["percent"]}
              for c, p in report["placeholders"].items()]
        parts += ["## Placeholder values", "", format_table(ph, ["column", "values", "rows", "%"]), ""]
    if numeric:
        parts += ["## Numeric ranges", "", format_table(numeric, ["column", "min", "median", "max", "zeros", "negative"]), ""]
    if report["notes"]:
        parts += ["## Notes", "", *[f"- {markdown_text(n)}" for n in report["notes"]], ""]
    parts += ["![missing values](eda_missing.png)", "", "![target balance](eda_target.png)", "",
              "![feature by class](eda_feature_by_class.png)", ""]
    return "\n".join(parts)


#: Bars of the EDA's missing-values and target plots, and curves of its feature-by-class plot, at most: past them a
#: plot shows the columns with the most missing values, or the most frequent classes (the title says how many of how
#: many; `eda.json` holds them all), so a table of 1,000 columns or classes still draws a readable figure.
MAX_BARS, MAX_CURVES = 30, 8


def _most(counts: Mapping[str, float], k: int) -> dict[str, float]:
    """The `k` largest entries of `counts`, largest first (ties in their order), or all of them in their order."""
    if len(counts) <= k:
        return dict(counts)
    return dict(sorted(counts.items(), key=lambda item: -item[1])[:k])


def _of(shown: int, total: int, which: str) -> str:
    """A title's note when a plot shows `shown` of `total` items, e.g. " (8 most frequent of 200)"."""
    return f" ({shown} {which} of {total})" if shown < total else ""


def _short(name: str, width: int = 16) -> str:
    """`name`, cut to `width` characters with an ellipsis (a tick label)."""
    return name if len(name) <= width else name[:width - 1] + "…"


def plots(table: Table, report: Mapping[str, Any], feature: str | None = None) -> dict[str, Any]:
    """Missing values per column, target balance, and one feature's distribution by class: file name -> figure.

    Example:
        >>> import pandas as pd
        >>> from kmodels.api import Table
        >>> rows = pd.DataFrame({"x": range(100), "y": [f"class {i % 50}" for i in range(100)]})
        >>> table = Table(rows, "y", problem="multiclass")
        >>> figures = plots(table, eda(table))
        >>> [figures[name].axes[0].get_title() for name in ("eda_target.png", "eda_feature_by_class.png")]
        ['Target balance: y (30 most frequent of 50)', 'x by y (8 most frequent of 50)']
        >>> for fig in figures.values():
        ...     pyplot().close(fig)
    """
    import seaborn as sns

    plt = pyplot()
    figures: dict[str, Any] = {}
    miss = _most({c: m["percent"] for c, m in report["missing"].items()}, MAX_BARS)
    fig, ax = plt.subplots(figsize=(7, max(3.2, 1.2 + 0.22 * len(miss))))
    ax.barh(list(miss)[::-1], list(miss.values())[::-1], color="tab:red")
    ax.set_xlabel("% missing")
    ax.set_title("Missing values per column" + _of(len(miss), len(report["missing"]), "with the most"))
    fig.tight_layout()
    figures["eda_missing.png"] = fig

    regression = "summary" in report["target"]
    every = report["target"].get("labels", report["target"]["counts"])
    fig, ax = plt.subplots(figsize=(4.5 if len(every) <= 6 else 8, 3.2))
    if regression:
        ax.hist(pd.to_numeric(table.frame[table.target], errors="coerce").dropna(), bins=40, color="tab:blue")
        ax.set_title(f"Target distribution: {report['target']['column']}")
    else:
        counts = _most(every, MAX_BARS)
        ax.bar([_short(str(c)) for c in counts], list(counts.values()), color="tab:blue")
        ax.set_title(f"Target {'labels' if 'labels' in report['target'] else 'balance'}: {report['target']['column']}"
                     + _of(len(counts), len(every), "most frequent"))
        if len(counts) > 6:
            ax.tick_params(axis="x", labelrotation=90)
    ax.set_ylabel("rows")
    fig.tight_layout()
    figures["eda_target.png"] = fig

    f = table.frame
    numeric = [c for c in f.columns if pd.api.types.is_numeric_dtype(f[c]) and c != table.target]
    column = feature if feature in f.columns else (numeric[0] if numeric else None)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    if column is not None:
        sample = f[[column, table.target]].dropna()
        sample = sample[table.problem_type().valid(sample[table.target])]
        sample = sample.sample(min(len(sample), 20000), random_state=0)
        values = pd.to_numeric(sample[column], errors="coerce")
        if values.min() >= 0 and values.max() > 1000:
            values = np.log1p(values)
            label = f"log1p({column})"
        else:
            label = column
        if regression:
            ax.scatter(values, pd.to_numeric(sample[table.target]), s=8, alpha=0.5)
            ax.set_ylabel(table.target)
        else:
            hue = sample[table.target].astype(str)
            problem = table.problem_type()
            if problem.per_label_threshold:  # one curve per label (rows carrying it), not per label set
                sets = problem.split(sample[table.target])
                rows = [(v, label) for v, labels in zip(values, sets, strict=True) for label in labels]
                values, hue = (pd.Series([v for v, _ in rows]), pd.Series([lb for _, lb in rows])) if rows else (values, hue)
            shown = list(_most(hue.value_counts().to_dict(), MAX_CURVES))  # the most frequent, at most
            keep = hue.isin(shown).to_numpy()
            sns.histplot(x=values.to_numpy()[keep], hue=hue.to_numpy()[keep], hue_order=shown, stat="density",
                         common_norm=False, element="step", bins=40, ax=ax)
            suffix = _of(len(shown), hue.nunique(), "most frequent")
        ax.set_xlabel(label)
        ax.set_title(f"{label} {'vs' if regression else 'by'} {table.target}" + ("" if regression else suffix))
    fig.tight_layout()
    figures["eda_feature_by_class.png"] = fig
    return figures
