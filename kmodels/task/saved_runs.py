"""The `Task` hooks of the commands that use a finished table run: `kmodels evaluate` (its test split, or new
labelled rows), `kmodels explain` (permutation importance) and `kmodels predict` (rows of CSV files).

They read the run directory and change nothing in it. `Task` inherits them; a task whose inputs are not
table rows overrides them (the vision plugin's `SavedImageRuns`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kmodels.errors import ConfigError, DataError
from kmodels.evaluation import fingerprint, plot_importance
from kmodels.runs import MAX_MODEL_BYTES, RunDir
from kmodels.saving import METRICS, MODEL
from kmodels.task.inference import _as_matrix, _load_state, load_model, predict_rows, prediction_frame, saved_problem

logger = logging.getLogger("kmodels")


class SavedRuns:
    """`evaluate_saved`, `score_saved`, `explain_saved` and `predict_files` for table runs (a part of `Task`)."""

    def evaluate_saved(self, run_dir: RunDir) -> dict[str, Any]:
        """Evaluate the saved model of `run_dir` on the same test split it was trained for.

        Read-only: the hooks run in this task's own context, which has no run directory, so
        nothing in the finished run is rewritten.
        """
        state = _load_state(run_dir)
        model = load_model(run_dir.readable(MODEL, MAX_MODEL_BYTES))
        _, threshold = saved_problem(run_dir, model)  # the run's own, chosen on validation with threshold = "auto"
        saved = run_dir.read_json(METRICS).get("data_fingerprint") if run_dir.exists(METRICS) else None
        prepared = self.prepare(fitted=None if state is None else state["pipeline"])
        metrics = {**self.evaluate(model, prepared, threshold=threshold), "problem": prepared.problem.to_json()}
        now = fingerprint(prepared.table.frame)
        if saved is not None and saved != now:
            logger.warning("The data differs from what this run was trained and scored on (fingerprint %s, "
                           "then %s): these are scores on other data, not a reproduction.", now, saved)
        metrics["data_changed"] = None if saved is None else saved != now
        return metrics

    def score_saved(self, run_dir: RunDir, model: Any, data: Path | pd.DataFrame) -> dict[str, Any]:
        """`kmodels evaluate RUN --data NEW.csv`: the run's model scored on every row of new labelled data (the
        target column must be there); rows without a usable label are counted and left out."""
        from kmodels.data.csv import read_csv

        state = _load_state(run_dir)
        if state is None:
            raise ConfigError(f"{str(run_dir.path)!r} has no fitted table preprocessing; --data scores table runs.")
        problem, threshold = saved_problem(run_dir, model)
        frame = data if isinstance(data, pd.DataFrame) else read_csv(data)
        where = "<DataFrame>" if isinstance(data, pd.DataFrame) else str(data)
        target = state["target"]
        if target not in frame.columns:
            raise DataError(f"{where}: no target column {target!r}, so there is nothing to score against (columns: "
                            f"{list(frame.columns)[:10]}). Add the labels, or use `kmodels predict`.")
        valid = problem.valid(frame[target])
        if not valid.any():
            raise DataError(f"{where}: no row has a usable {target!r} value for this {problem.kind} problem "
                            f"(expected {list(problem.class_names)[:10] if problem.is_classification else 'numbers'}).")
        rows = frame.loc[valid]
        x = _readable_rows(rows.drop(columns=[target, *state["exclude"]], errors="ignore"), state, where, False)
        output = predict_rows(model, _as_matrix(state["pipeline"].transform(x)))
        metrics = problem.score(problem.encode(rows[target]), output, threshold)
        if (~valid).any():
            logger.warning("%s: %d row(s) without a usable %r value were left out.", where, int((~valid).sum()), target)
        return {**metrics, "problem": problem.to_json(), "rows": int(valid.sum()),
                "rows_without_label": int((~valid).sum()), "data": where}

    def explain_saved(self, run_dir: RunDir, model: Any, inputs: Sequence[Path] = (),
                      plot: Path | None = None) -> pd.DataFrame:
        """`kmodels explain`: permutation importance of a finished run's columns, on its test split or on
        labelled CSV `inputs` (holding the target column); one row per column, most important first.

        Read-only: nothing in the run changes; `plot` (a new file) gets the bar chart.
        """
        from kmodels.data.csv import read_csv

        state = _load_state(run_dir)
        problem, threshold = saved_problem(run_dir, model)
        repeats = self.spec.options("evaluate").importance_repeats or 5
        if not inputs:
            prepared = self.prepare(fitted=None if state is None else state["pipeline"])
            test = prepared.data["test"]
            frame = test.frame.drop(columns=self.excluded_columns(prepared.table), errors="ignore")
            importance = (self._importance(model, prepared.preprocessor, problem, frame, test.y, threshold, repeats)
                          if len(test.y) else None)
        else:
            if state is None:
                raise ConfigError(f"{str(run_dir.path)!r} has no fitted table preprocessing, so its inputs are not "
                                  "table rows; explain it without INPUT (its test split).")
            frame = pd.concat([read_csv(p) for p in inputs], ignore_index=True)
            target = state["target"]
            if target not in frame.columns:
                raise DataError(f"explain needs labelled rows: the input has no target column {target!r} (columns: "
                                f"{list(frame.columns)[:10]}). Add it, or explain without INPUT (the test split).")
            valid = problem.valid(frame[target])
            rows = frame.loc[valid].drop(columns=[target, *state["exclude"]], errors="ignore")
            importance = self._importance(model, state["pipeline"], problem, rows,
                                          problem.encode(frame.loc[valid, target]), threshold, repeats)
        if importance is None:
            raise ConfigError("Nothing to explain: the test split is empty.")
        if plot is not None:
            plot_importance(importance, importance["metric"], plot, title=f"{self.spec.task}: permutation importance")
        return pd.DataFrame([{"column": k, f"{importance['metric']}_drop": v["mean"], "std": v["std"]}
                             for k, v in importance["features"].items()])

    @classmethod
    def predict_files(cls, run_dir: RunDir | None, model: Any, inputs: Sequence[Path],
                      allow_missing: bool = False) -> pd.DataFrame:
        """Predictions for the rows of CSV files, through the run's fitted preprocessing.

        Classification: `label` (binary: at the run's threshold), its `probability` and one
        `probability_<class>` column per class; regression: `prediction`. `row` is the row's
        index in its input (a DataFrame's own index; 0..n-1 for a file), and a single
        DataFrame's predictions keep its index.

        Rows the model cannot really read are refused with a `DataError` that counts them: text
        in a column that was numeric in training, a row whose features are all missing, a
        missing column. `allow_missing=True` (`--allow-missing`) predicts them anyway, with the
        unreadable values imputed as missing, and logs the counts.
        """
        state = None if run_dir is None else _load_state(run_dir)
        problem, threshold = saved_problem(run_dir, model)
        frames = []
        from kmodels.data.csv import read_csv

        for i, path in enumerate(inputs):
            frame = path if isinstance(path, pd.DataFrame) else read_csv(path)
            path = f"<DataFrame {i}>" if isinstance(path, pd.DataFrame) else path
            x = frame
            if state is not None:
                rows = _readable_rows(frame.drop(columns=state["exclude"], errors="ignore"), state, str(path),
                                      allow_missing)
                x = state["pipeline"].transform(rows)
            x = _as_matrix(x)
            width = model.input_shape[-1] if isinstance(model.input_shape, tuple) else None
            if isinstance(width, int) and x.shape[1] != width:
                raise DataError(f"{path}: {x.shape[1]} feature column(s) after preprocessing, but the model takes "
                                f"{width}. Give the columns the model was trained on (a bare .keras file takes its "
                                "features as numbers, in training order; predict with the run directory to pass raw "
                                "rows).")
            output = predict_rows(model, x)
            out = pd.DataFrame({"source": str(path), "row": frame.index}, index=frame.index)
            frames.append(pd.concat([out, prediction_frame(problem, output, threshold, index=frame.index)], axis=1))
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True)


def _readable_rows(frame: pd.DataFrame, state: Mapping[str, Any], where: str, allow_missing: bool) -> pd.DataFrame:
    """`frame`'s feature rows, checked against what training saw (see `Task.predict_files`)."""
    features = state.get("feature_columns")
    numeric = [c for c in state.get("numeric_columns", []) if c in frame.columns]
    if features is not None:
        absent = [c for c in features if c not in frame.columns]
        if absent:
            raise DataError(f"{where}: missing column(s) {absent[:10]} that the model was trained on; expected "
                            f"the columns {features[:20]}{' ...' if len(features) > 20 else ''}.")
    problems, out = [], frame
    bad_cells = {}
    for column in numeric:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        parsed = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & parsed.isna()
        if bad.any():
            first = bad.to_numpy().nonzero()[0][0]
            bad_cells[column] = (int(bad.sum()), values.iloc[first], frame.index[first])
            if allow_missing:
                out = out.assign(**{column: parsed})
    if bad_cells:
        problems.append(f"{sum(n for n, _, _ in bad_cells.values())} value(s) that are not numbers in numeric "
                        "column(s): " + "; ".join(f"{c}: {n} (e.g. {v!r} at row {r!r})"
                                                  for c, (n, v, r) in list(bad_cells.items())[:5]))
    columns = [c for c in (features or frame.columns) if c in frame.columns]
    empty = frame[columns].isna().all(axis=1).to_numpy() if columns else np.zeros(len(frame), bool)
    if empty.any():
        problems.append(f"{int(empty.sum())} row(s) with every feature missing (e.g. row "
                        f"{frame.index[empty.nonzero()[0][0]]!r})")
    if problems and not allow_missing:
        raise DataError(f"{where}: {'; '.join(problems)}. The model would see imputed values there, not your data. "
                        "Fix the rows, or pass --allow-missing (allow_missing=True) to predict them imputed.")
    if problems:
        logger.warning("%s: %s; predicted with imputed values (--allow-missing).", where, "; ".join(problems))
    return out
