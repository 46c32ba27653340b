"""Preparation that lives in the model: categories encoded, missing values imputed, by column kind.

``[tool.mlci.prepare]`` says how each kind of column is prepared; mlci compiles it into a
scikit-learn ``Pipeline`` whose first step is a ``ColumnTransformer``, so the saved model takes raw
rows (strings, missing values) wherever it runs: ``mlci predict``, ``mlci serve``, MLflow.
Numeric columns that are never missing need nothing: a model of them alone is the estimator
itself, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from mlci.errors import MlciError
from mlci.pipeline._columns import Column

CATEGORICAL_CHOICES = ("auto", "onehot", "ordinal", "native")
NUMERIC_CHOICES = ("auto", "median", "mean", "passthrough")
NATIVE_PARAM = "categorical_features"  # HistGradientBoosting*: categories and NaN built in
# A missing category is a category of its own: NaN (mlci's rows) and None (a pandas frame, as
# MLflow's server passes it) both become this value before encoding, so they score alike.
MISSING_CATEGORY = "(missing)"


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """``[tool.mlci.prepare]``: how categorical and numeric columns reach the estimator.

    ``auto`` picks what fits the estimator: for one with native categorical support
    (``HistGradientBoosting*``) categories are ordinal-encoded and marked categorical, and missing
    numbers pass through (it handles NaN); for any other, one-hot encoding (a missing value is a
    category of its own, an unseen one encodes as all zeros) and the median for missing numbers.
    """

    categorical: str = "auto"
    numeric: str = "auto"

    def resolved(self) -> dict[str, str]:
        """Plain JSON, for the training key."""
        return {"categorical": self.categorical, "numeric": self.numeric}


def needed(columns: Sequence[Column]) -> bool:
    """True when the features are not all numbers that are never missing."""
    return any(not column.numeric or column.missing for column in columns)


def choices(config: PrepareConfig, estimator: Any) -> tuple[str, str]:
    """The categorical and numeric preparation for this estimator, ``auto`` resolved."""
    native = NATIVE_PARAM in _final(estimator).get_params(deep=False)
    categorical = config.categorical
    if categorical == "auto":
        categorical = "native" if native else "onehot"
    numeric = config.numeric
    if numeric == "auto":
        numeric = "passthrough" if native else "median"
    return categorical, numeric


def prepared(estimator: Any, columns: Sequence[Column], config: PrepareConfig, where: str) -> Any:
    """``estimator`` behind the column preparation the features need; unchanged when none."""
    if not needed(columns):
        return estimator
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    categorical, numeric = choices(config, estimator)
    final = _final(estimator)
    categories = [i for i, column in enumerate(columns) if not column.numeric]
    numbers = [i for i, column in enumerate(columns) if column.numeric]
    if categorical == "native":
        if NATIVE_PARAM not in final.get_params(deep=False):
            raise MlciError(
                f"[tool.mlci.prepare] categorical: 'native' needs an estimator with native "
                f"categorical support (HistGradientBoosting*), not {type(final).__name__}; "
                "choose onehot or ordinal"
            )
        if final.get_params(deep=False)[NATIVE_PARAM] not in (None, "from_dtype", "warn"):
            raise MlciError(
                f"{where} params: {NATIVE_PARAM} is set by mlci from the manifest when "
                "[tool.mlci.prepare] categorical is 'native'; leave it out"
            )
    parts: list[tuple[str, Any, list[int]]] = []
    if categories:
        parts.append(("categories", _encoder(categorical), categories))
    if numbers:
        imputer = "passthrough" if numeric == "passthrough" else SimpleImputer(strategy=numeric)
        parts.append(("numbers", imputer, numbers))
    prepare = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    if categorical == "native":
        mask = [True] * len(categories) + [False] * len(numbers)
        final.set_params(**{NATIVE_PARAM: mask})
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    return Pipeline([("prepare", prepare), *steps])


def _encoder(choice: str) -> Any:
    """Missing values as a category, then one-hot or ordinal codes (unknown: zeros, -1 or NaN)."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if choice == "onehot":
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    else:  # native: an unknown category takes the trees' missing-value branch
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan if choice == "native" else -1
        )
    fill = {"strategy": "constant", "fill_value": MISSING_CATEGORY}
    return Pipeline(
        [
            ("nan", SimpleImputer(**fill)),
            ("none", SimpleImputer(missing_values=None, **fill)),
            ("encode", encoder),
        ]
    )


def _final(estimator: Any) -> Any:
    """The last step of a pipeline, or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def model_input(rows: Sequence[Sequence[Any]], columns: Sequence[Column]) -> Any:
    """Rows of raw values as the array a model takes: floats when every column is a number.

    A missing value (None) is NaN; with a categorical column the array holds objects (strings
    and floats), which the model's ``ColumnTransformer`` splits by column.
    """
    import numpy as np

    if not columns:  # rows without a description of their columns: numbers, as before
        return np.asarray(rows, dtype=np.float64)
    if all(column.numeric for column in columns):
        if any(column.missing for column in columns):
            rows = [[np.nan if value is None else value for value in row] for row in rows]
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(columns))
    array = np.empty((len(rows), len(columns)), dtype=object)
    for i, row in enumerate(rows):
        array[i] = [np.nan if value is None else value for value in row]
    return array
