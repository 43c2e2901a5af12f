"""Problem types: binary, multiclass, multi-label, regression, one module each.

A `Problem` says what is predicted and everything that follows from it: the
model's head (`num_classes`), the loss and metrics Keras trains with, how the
target column becomes labels, how predictions are scored and decoded. It is
inferred from the target column (`infer_problem`) and always overridable with
`data.problem` in a spec.

The `num_classes` convention of every registered model (keras-hub style):
`num_classes=2` → one sigmoid unit (binary), `num_classes=N >= 3` → N softmax
units (multiclass), `num_classes=1` → one linear unit (regression). A multi-label
problem builds its model inside `Problem.building()`, under which `output_head`
gives N independent sigmoid units.

Example:
    >>> import pandas as pd
    >>> from kmodels.problems import infer_problem
    >>> p = infer_problem(pd.Series(["adelie", "gentoo", "chinstrap", "adelie"]))
    >>> p.kind, p.class_names, p.num_classes, p.loss
    ('multiclass', ('adelie', 'chinstrap', 'gentoo'), 3, 'sparse_categorical_crossentropy')
"""

from __future__ import annotations

from kmodels.problems.base import (
    _BY_KIND,
    KINDS,
    LABEL_SEP,
    MAX_CLASSES,
    MAX_DISCRETE_LEVELS,
    Problem,
    ProblemKind,
    output_head,
)
from kmodels.problems.binary import BinaryProblem
from kmodels.problems.infer import infer_problem
from kmodels.problems.multiclass import MulticlassProblem
from kmodels.problems.multilabel import MultilabelProblem
from kmodels.problems.regression import RegressionProblem

_BY_KIND.update(binary=BinaryProblem, multiclass=MulticlassProblem, multilabel=MultilabelProblem, regression=RegressionProblem)

__all__ = ["KINDS", "LABEL_SEP", "MAX_CLASSES", "MAX_DISCRETE_LEVELS", "BinaryProblem", "MulticlassProblem",
           "MultilabelProblem", "Problem", "ProblemKind", "RegressionProblem", "infer_problem", "output_head"]
