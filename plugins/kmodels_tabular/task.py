"""The tabular tasks: `bank_gender` (the reference) and `tabular` (any CSV)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from kmodels.api import (
    Artifacts,
    ConfigError,
    DataError,
    Prepared,
    Problem,
    Table,
    Task,
    all_layers,
    read_csv,
    registry,
)
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
    """Reference models trained next to the Keras net, on the same features and splits.

    Classifiers for classification problems, regressors for regression.

    Args:
        majority: predict the training split's majority class (regression: its mean).
        linear: scikit-learn `LogisticRegression` (regression: `Ridge`).
        gradient_boosting: `HistGradientBoostingClassifier` (regression: `...Regressor`).
        gradient_boosting_max_outputs: the gradient-boosting baseline is left out (logged) when the problem has
            more classes or labels than this: it grows a tree per class per iteration (multiclass) or a whole
            model per label (multi-label), so 200 labels took minutes, far longer than the net.
        sklearn_mlp: `MLPClassifier` (regression: `MLPRegressor`), as in the reference notebook.
        sklearn_hidden: the MLP's hidden layer sizes.
        sklearn_max_iter: the MLP's iteration cap (with early stopping on 10% of its training rows
            from 1,000 rows on; on fewer, a 10% hold-out of a few dozen rows stops it by chance).
        sklearn_max_rows: the scikit-learn models train on at most this many training rows
            (a stratified sample), which bounds their cost on the 1M-row file.
        weighted: the scikit-learn models see the rows weighted as the Keras net does (`[train]
            class_weight = "balanced"`: each class in total as much as any other), so the comparison
            table is like for like on every metric; `false` trains them unweighted, as scikit-learn's
            defaults do. Nothing changes when `class_weight` is `"none"` or for regression. (scikit-learn fits
            HistGradientBoosting on weighted rows several times slower: 1.3 s against 0.18 s on 7,000 rows.)
    """

    majority: bool = True
    linear: bool = True
    gradient_boosting: bool = True
    gradient_boosting_max_outputs: int = 50
    sklearn_mlp: bool = True
    sklearn_hidden: tuple[int, ...] = (64, 32)
    sklearn_max_iter: int = 200
    sklearn_max_rows: int = 50000
    weighted: bool = True

    def __post_init__(self) -> None:
        if self.gradient_boosting_max_outputs < 1:
            raise ConfigError(f"[baselines] gradient_boosting_max_outputs={self.gradient_boosting_max_outputs}: "
                              "expected at least 1 (gradient_boosting = false leaves the baseline out).")


#: The scikit-learn MLP stops early on a 10% hold-out of its training rows from this many rows on.
MLP_EARLY_STOPPING_ROWS = 1000


def _sklearn_models(problem: Problem, opts: BaselineOptions, seed: int, rows: int) -> dict[str, Any]:
    """The enabled scikit-learn baselines: classifiers, or regressors for a regression problem."""
    from sklearn import ensemble, linear_model, neural_network

    classify = problem.is_classification
    mlp = neural_network.MLPClassifier if classify else neural_network.MLPRegressor
    boosting = ensemble.HistGradientBoostingClassifier if classify else ensemble.HistGradientBoostingRegressor
    candidates = {
        ("logistic_regression" if classify else "ridge", opts.linear):
            lambda: linear_model.LogisticRegression(max_iter=1000) if classify else linear_model.Ridge(),
        ("hist_gradient_boosting", opts.gradient_boosting and _boosting_fits(problem, opts)):
            lambda: boosting(random_state=seed),
        ("sklearn_mlp", opts.sklearn_mlp): lambda: mlp(hidden_layer_sizes=opts.sklearn_hidden,
                                                      max_iter=opts.sklearn_max_iter, early_stopping=rows >= MLP_EARLY_STOPPING_ROWS,
                                                      random_state=seed),
    }
    return {name: problem.baseline(make()) for (name, enabled), make in candidates.items() if enabled}


def _boosting_fits(problem: Problem, opts: BaselineOptions) -> bool:
    """Whether the gradient-boosting baseline is within `gradient_boosting_max_outputs`; logs why not."""
    if problem.output_width <= opts.gradient_boosting_max_outputs:
        return True
    what = "labels" if problem.per_label_threshold else "classes"
    logger.info("hist_gradient_boosting: left out: %d %s > [baselines] gradient_boosting_max_outputs = %d (one tree "
                "per class and iteration, or a model per label; --set baselines.gradient_boosting_max_outputs=%d "
                "trains it)", problem.output_width, what, opts.gradient_boosting_max_outputs, problem.output_width)
    return False


class TabularTask(Task):
    """Predict a column of a table (binary, multiclass, regression) with EDA and scikit-learn baselines."""

    sections = {"eda": EdaOptions, "baselines": BaselineOptions}

    def analyse(self, table: Table) -> Artifacts:
        """The EDA: `eda.json`, `eda.md` and its plots, for the runner to write."""
        opts = self.spec.options("eda")
        report = eda_lib.eda(table, opts.placeholders)
        repeated = report["duplicate_rows"]
        if repeated and not any(b["name"] == "drop_duplicates" for b in self.spec["preprocess"]):
            report["notes"].append(
                f"{repeated:,} rows ({100 * repeated / max(report['rows'], 1):.1f}%) repeat an earlier row exactly and "
                "are kept, as repeated observations. If they are copies of one record, add [[preprocess]] name = "
                "\"drop_duplicates\" before the other steps: copies would reach both the training and the test split.")
        for line in eda_lib.summary_lines(report):
            logger.info(line)
        return Artifacts({"eda.json": report, "eda.md": eda_lib.markdown(report),
                          **eda_lib.plots(table, report, opts.feature)})

    def baselines(self, prepared: Prepared) -> dict[str, dict[str, Any]]:
        opts = self.spec.options("baselines")
        out = super().baselines(prepared) if opts.majority else {}
        problem = prepared.problem
        x, y = prepared.data["train"].x, prepared.data["train"].y
        if len(y) > opts.sklearn_max_rows:
            from sklearn.model_selection import train_test_split

            x, _, y, _ = train_test_split(x, y, train_size=opts.sklearn_max_rows, random_state=self.train_options.seed,
                                          stratify=y if problem.is_classification and problem.stratified else None)
        test = prepared.data["test"]
        weights = self.sample_weights(y, problem) if opts.weighted else None
        if weights is not None:
            logger.info("baselines: rows weighted by [train] class_weight = \"balanced\", as the Keras net's "
                        "([baselines] weighted = false trains them unweighted)")
        for name, model in _sklearn_models(problem, opts, self.train_options.seed, len(y)).items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x, y, **({} if weights is None else {"sample_weight": weights}))
            seconds = time.perf_counter() - start
            iterations = getattr(model, "n_iter_", None)
            if iterations is None and hasattr(model, "estimators_"):  # one-vs-rest: the longest of its models
                iterations = [getattr(e, "n_iter_", None) for e in model.estimators_]
                iterations = None if None in iterations else iterations
            iterations = int(np.max(iterations)) if iterations is not None else None
            logger.info("%s: trained on %d rows (cap %d)%s, %.1f s", name, len(y), opts.sklearn_max_rows,
                        f", {iterations} iterations" if iterations is not None else "", seconds)
            out[name] = {**problem.score(test.y, problem.baseline_output(model, test.x), self.threshold),
                         "trained_on_rows": int(len(y)), "fit_seconds": round(seconds, 2)}
            if iterations is not None:
                out[name]["iterations"] = iterations
        return out

    def resolve_auto(self, table: Table, problem: Problem) -> None:
        """`Task.resolve_auto`, and `mlp`'s `[model] piecewise_bins = "auto"`: `AUTO_BINS` piecewise-linear bins per feature on
        a table of at least `AUTO_BINS_ROWS` rows, none on a smaller one."""
        from kmodels_tabular.models import AUTO_BINS, AUTO_BINS_ROWS

        super().resolve_auto(table, problem)
        if self.spec["model"].get("piecewise_bins") != "auto":
            return
        rows = len(table.frame)
        bins = AUTO_BINS if rows >= AUTO_BINS_ROWS else 0
        logger.info("[model] piecewise_bins = \"auto\": %d (%d rows %s %d)", bins, rows, ">=" if bins else "<", AUTO_BINS_ROWS)
        self.spec = self.spec.replaced("model.piecewise_bins", bins)

    # ---- TabM: the members train on the mean of their losses; the saved model averages them ---------
    def build_model(self, prepared: Prepared) -> Any:
        """The spec's model; piecewise-linear embeddings in it (`tabm`, `embedding = "piecewise"`; `mlp`, `piecewise_bins > 0`)
        get their bin edges from the training split (`kmodels_tabular.tabm.fit_bins`; `mlp`'s `piecewise_edges`)."""
        from kmodels_tabular.models import PIECEWISE_ENCODING, piecewise_weights
        from kmodels_tabular.tabm import PIECEWISE, fit_bins

        model = super().build_model(prepared)
        train = prepared.data["train"]
        for layer in all_layers(model):
            if layer.name == PIECEWISE:
                layer.edges.assign(fit_bins(train.x, layer.bins))
            elif layer.name == PIECEWISE_ENCODING:
                strategy = self.spec["model"].get("piecewise_edges", "quantile")
                edges = fit_bins(train.x, layer.depth_multiplier, train.y, strategy=strategy,
                                 classification=prepared.problem.is_classification)
                layer.set_weights(piecewise_weights(edges))
        return model

    def training_model(self, model: Any) -> Any:
        """A TabM model (`kmodels_tabular.tabm`) trains through its members' output (n, k, units), mapped onto the
        target's scale like the model (regression); `finish_model` hands back the averaging model, which shares
        every weight. Any other model trains as it is."""
        import keras

        from kmodels_tabular.tabm import MEMBERS

        names = {layer.name for layer in model.layers}
        if MEMBERS not in names:
            return model
        members = model.get_layer(MEMBERS).output
        if "target_scale" in names:  # a regression net's fixed map onto the target's units (an affine map)
            members = model.get_layer("target_scale")(members)
        self._averaged = model
        return keras.Model(model.inputs, members, name=f"{model.name}_members")

    def finish_model(self, model: Any) -> Any:
        averaged = getattr(self, "_averaged", None)
        return super().finish_model(averaged if averaged is not None and len(model.output.shape) == 3 else model)

    def fit(self, model: Any, prepared: Prepared, *, epochs: int | None = None,
            initial_epoch: int = 0) -> dict[str, list[float]]:
        """`Task.fit`; for TabM's members, on the labels repeated once per member (so the loss is the mean of the
        members' losses) with the class weights given as sample weights."""
        shape = getattr(model.output, "shape", ())
        if len(shape) != 3:
            return super().fit(model, prepared, epochs=epochs, initial_epoch=initial_epoch)
        k = int(shape[1])
        train, val = prepared.data["train"], prepared.data["val"]

        def repeat(y: np.ndarray) -> np.ndarray:
            return np.repeat(np.expand_dims(y, 1), k, axis=1)

        weights = self.sample_weights(train.y, prepared.problem)
        return self.fit_arrays(  # weights (n, 1): one per row, broadcast over the members' losses
            model, train.x, repeat(train.y), val.x, repeat(val.y), weights=None if weights is None else weights[:, None],
            epochs=self.epochs(prepared) if epochs is None else epochs, initial_epoch=initial_epoch)

    _batch_logged: tuple[int, int] | None = None

    def batch_size(self, rows: int) -> int:
        """`[train] batch_size`, made smaller on small tables so an epoch has at least 16 steps (never below 8).

        Penguins' 232 training rows at the default 256 would be one step per epoch.
        """
        size = self.train_options.batch_size
        fitted = max(8, rows // 16)
        if fitted < size:
            if self._batch_logged != (fitted, rows):  # asked several times per run: said once
                self._batch_logged = (fitted, rows)
                logger.info("Batch size %d for %d training rows (at least 16 steps per epoch; [train] "
                            "batch_size=%d)", fitted, rows, size)
            return fitted
        return size

    def report(self, metrics: Mapping[str, Any], table_text: str, plots: Sequence[str] = ()) -> str:
        base = super().report(metrics, table_text, plots)
        return base + "\nSee [eda.md](eda.md) for the data analysis.\n"


def _need_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"--data {str(path)!r} is {'a directory' if path.is_dir() else 'not a regular file'}; "
                        "a tabular task reads one CSV file.")


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
        _need_file(path)
        header = read_csv(path, nrows=5).columns
        if has_bank_schema(header):
            return {**raw, "data": {"name": "bank_transactions", "path": str(path)}}
        logger.info("%s does not have the bank_transactions columns: using the generic CSV path.", path)
        return _generic(raw, path)


@registry.tasks.register("tabular")
class Tabular(TabularTask):
    """Predict any column of any CSV: `--data FILE --set data.target=COLUMN`.

    The problem (binary, multiclass, regression) is inferred from the target
    and can be set with `--set data.problem=regression`. Column types are
    inferred (numeric, date-like, categorical); identifier-like columns are
    dropped with a note. The default data is the synthetic bank table.

    Example: `kmodels run tabular --data penguins.csv --set data.target=species`.
    """

    spec_file = resources.files("kmodels_tabular") / "tabular.toml"

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        _need_file(path)
        data = raw.get("data", {})
        keep = {k: data[k] for k in CSV_KEYS if k in data and _set_by_user(data, k)}
        return {**raw, "data": {"name": "csv", "path": str(path), **keep}}


#: The `[data]` keys of the `csv` dataset that a spec given with `--data FILE` keeps.
CSV_KEYS = ("target", "problem", "classes", "group", "sep")


def _set_by_user(data: Mapping[str, Any], key: str) -> bool:
    """Whether `[data] key` in a spec was set for the user's CSV rather than left at the spec dataset's default.

    A spec written by `kmodels show tabular` names the embedded dataset (`bank_synthetic`) with
    every default filled in (`target = "CustGender"`); a `target` the user edited differs from that
    default and is kept for their file, the untouched defaults are not.
    """
    import inspect

    name = data.get("name")
    if name == "csv" or not isinstance(name, str) or name not in registry.datasets.list():
        return True
    param = inspect.signature(registry.datasets.get(name)).parameters.get(key)
    if param is None or param.default is inspect.Parameter.empty:
        return True
    default, value = param.default, data[key]
    if isinstance(default, tuple | list) and isinstance(value, tuple | list):
        return list(default) != list(value)
    return default != value



