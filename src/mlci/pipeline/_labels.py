"""Class labels for classifiers that only take the codes 0 … k-1 (XGBoost, dmlc/xgboost#10078).

``EncodedLabels`` fits its classifier on the labels' codes and answers the labels themselves, so
that predictions, ``classes_``, the checks, the server and an MLflow export see what the data
says ("setosa"), whichever classifier the project configures. The codes are scikit-learn's
``LabelEncoder``'s: the sorted labels, the manifest's order.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone

# Import paths of the classifiers that refuse any label but 0 … k-1.
CODES_ONLY = ("xgboost.",)


def needs_codes(class_path: str) -> bool:
    """True for a classifier that takes only integer codes as labels."""
    return class_path.startswith(CODES_ONLY)


class EncodedLabels(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):  # type: ignore[misc]
    """A classifier fitted on label codes that predicts the labels."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, x: Any, y: Any, **fit_params: Any) -> EncodedLabels:
        """Encode ``y``, fit a clone of the classifier on the codes."""
        from sklearn.preprocessing import LabelEncoder

        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(x, self.encoder_.transform(y), **fit_params)
        return self

    def predict(self, x: Any) -> Any:
        """The labels of the codes the classifier predicts."""
        import numpy as np

        codes = np.asarray(self.estimator_.predict(x)).astype(np.int64)
        return self.encoder_.inverse_transform(codes)

    def predict_proba(self, x: Any) -> Any:
        """The classifier's probabilities, one column per label in ``classes_``' order."""
        return self.estimator_.predict_proba(x)

    @property
    def feature_importances_(self) -> Any:
        """The classifier's own importances, when it has them."""
        return self.estimator_.feature_importances_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # the wrapped booster decides what it accepts
        return tags
