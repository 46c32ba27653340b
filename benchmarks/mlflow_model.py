"""Run inside the benchmark's MLflow venv: save an mlci model (joblib) as an MLflow model."""

from __future__ import annotations

import sys

import joblib
import mlflow.sklearn

model = joblib.load(sys.argv[1])
mlflow.sklearn.save_model(model, sys.argv[2], serialization_format="pickle")
