"""The seed article's training script: read the CSV, fit a RandomForest, save it with joblib."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import joblib
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split


def main(path: str) -> None:
    with Path(path).open(newline="") as stream:
        _header, *rows = list(csv.reader(stream))
    features = [[float(value) for value in row[:-1]] for row in rows]
    labels = [row[-1] for row in rows]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=42, stratify=labels
    )
    model = RandomForestClassifier(n_estimators=100, random_state=42).fit(x_train, y_train)
    print(f"accuracy {accuracy_score(y_test, model.predict(x_test)):.4f}")
    joblib.dump(model, "model.joblib")


if __name__ == "__main__":
    main(sys.argv[1])
