from __future__ import annotations

from mlci.pipeline._evaluate import compute_metrics, predictions_fingerprint, scalar_metrics


def test_metrics_on_a_known_confusion() -> None:
    truth = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "b"]
    metrics = compute_metrics(truth, predicted, ["a", "b"], train_size=10)
    assert metrics["accuracy"] == 0.75
    assert metrics["confusion_matrix"] == {"labels": ["a", "b"], "matrix": [[1, 1], [0, 2]]}
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert abs(metrics["macro_f1"] - (2 / 3 + 0.8) / 2) < 1e-12
    assert (metrics["train_size"], metrics["test_size"]) == (10, 4)
    flat = scalar_metrics(metrics)
    assert flat["accuracy"] == 0.75
    assert flat["recall.a"] == 0.5
    assert "train_size" not in flat


def test_fingerprint_depends_on_order_and_values() -> None:
    base = predictions_fingerprint(["a", "b"])
    assert base == predictions_fingerprint(["a", "b"])
    assert base != predictions_fingerprint(["b", "a"])
    assert base != predictions_fingerprint(["a", "c"])
