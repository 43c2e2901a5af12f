"""The tabular tasks: `bank_gender` (the reference) and `tabular` (any CSV)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from kmodels import registry
from kmodels.data import Table
from kmodels.data.csv import read_csv
from kmodels.evaluation import binary_metrics
from kmodels.task import Features, Task
from kmodels_tabular import eda as eda_lib
from kmodels_tabular.bank_data import has_bank_schema

logger = logging.getLogger("kmodels")


@dataclass(frozen=True)
class EdaOptions:
    """EDA settings.

    Args:
        feature: the column whose distribution by class is plotted (default: the first numeric one).
        placeholders: values that stand for "missing" per column, counted in the report.
    """

    feature: str | None = None
    placeholders: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class BaselineOptions:
    """Reference models trained next to the Keras net.

    Args:
        majority: predict the training split's majority class.
        sklearn_mlp: scikit-learn `MLPClassifier`, as in the reference notebook.
        sklearn_hidden: its hidden layer sizes.
        sklearn_max_iter: its iteration cap (with early stopping on 10% of its training rows).
        sklearn_max_rows: it trains on at most this many training rows (a stratified
            sample), which bounds its cost on the 1M-row file.
    """

    majority: bool = True
    sklearn_mlp: bool = True
    sklearn_hidden: tuple[int, ...] = (64, 32)
    sklearn_max_iter: int = 200
    sklearn_max_rows: int = 50000


class TabularTask(Task):
    """Binary classification of table rows with EDA and scikit-learn baselines."""

    sections = {"eda": EdaOptions, "baselines": BaselineOptions}

    def analyse(self, table: Table) -> None:
        opts = self.spec.options("eda")
        report = eda_lib.eda(table, opts.placeholders)
        for line in eda_lib.summary_lines(report):
            logger.info(line)
        if self.run_dir is not None:
            self.run_dir.write_json("eda.json", report)
            self.run_dir.write_text("eda.md", eda_lib.markdown(report))
            eda_lib.plots(table, report, self.run_dir.path, opts.feature)
        self.eda = report

    def baselines(self, data: Mapping[str, Features]) -> dict[str, dict[str, Any]]:
        opts = self.spec.options("baselines")
        out = super().baselines(data) if opts.majority else {}
        if opts.sklearn_mlp:
            out["sklearn_mlp"] = self._sklearn_mlp(data, opts)
        return out

    def _sklearn_mlp(self, data: Mapping[str, Features], opts: BaselineOptions) -> dict[str, Any]:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier

        x, y = data["train"].x, data["train"].y
        if len(y) > opts.sklearn_max_rows:
            x, _, y, _ = train_test_split(x, y, train_size=opts.sklearn_max_rows, stratify=y,
                                          random_state=self.train_options.seed)
        clf = MLPClassifier(hidden_layer_sizes=opts.sklearn_hidden, max_iter=opts.sklearn_max_iter,
                            early_stopping=len(y) >= 50, random_state=self.train_options.seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x, y)
        seconds = time.perf_counter() - start
        logger.info("sklearn_mlp: trained on %d rows (cap %d), %d iterations, %.1f s",
                    len(y), opts.sklearn_max_rows, clf.n_iter_, seconds)
        metrics = binary_metrics(data["test"].y, clf.predict_proba(data["test"].x)[:, 1],
                                 self.spec.options("evaluate").threshold, self.class_names)
        return {**metrics, "trained_on_rows": int(len(y)), "iterations": int(clf.n_iter_), "fit_seconds": round(seconds, 2)}

    def report(self, metrics: Mapping[str, Any], table_text: str) -> str:
        base = super().report(metrics, table_text)
        return base + "\nSee [eda.md](eda.md) for the data analysis.\n"


def _generic(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    target = raw.get("data", {}).get("target")
    spec = registry.tasks.get("tabular").default_spec()
    out = {**raw, "data": {"name": "csv", "path": str(path)}, "preprocess": spec["preprocess"], "eda": {}}
    if isinstance(target, str) and target != "CustGender":
        out["data"]["target"] = target
    return out


@registry.tasks.register("bank_gender")
class BankGender(TabularTask):
    """Predict a bank customer's gender from transactions (EDA, sklearn MLP baseline, Keras MLP).

    `--data bank_transactions.csv` reads the published file; any other CSV is
    run through the generic path (`--set data.target=COLUMN`).

    Example: `kmodels run bank_gender` (embedded data) or
    `kmodels run bank_gender --data bank_transactions.csv`.
    """

    spec_file = resources.files("kmodels_tabular") / "bank_gender.toml"

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        header = read_csv(path, nrows=5).columns if path.is_file() else []
        if has_bank_schema(header):
            return {**raw, "data": {"name": "bank_transactions", "path": str(path)}}
        logger.info("%s does not have the bank_transactions columns: using the generic CSV path.", path)
        return _generic(raw, path)


@registry.tasks.register("tabular")
class Tabular(TabularTask):
    """Binary classification of any CSV: `--data FILE --set data.target=COLUMN`.

    Column types are inferred (numeric, date-like, categorical); identifier-like
    columns are dropped with a note. The default data is the synthetic bank table.

    Example: `kmodels run tabular --data churn.csv --set data.target=churned`.
    """

    spec_file = resources.files("kmodels_tabular") / "tabular.toml"

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        return {**raw, "data": {"name": "csv", "path": str(path)}}



