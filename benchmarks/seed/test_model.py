"""The seed article's tests: the model exists, loads and predicts the obvious cases."""

from __future__ import annotations

import joblib


def test_model_predicts_setosa() -> None:
    model = joblib.load("model.joblib")
    assert model.predict([[5.1, 3.5, 1.4, 0.2]])[0] == "setosa"


def test_model_predicts_virginica() -> None:
    model = joblib.load("model.joblib")
    assert model.predict([[6.9, 3.1, 5.4, 2.1]])[0] == "virginica"
