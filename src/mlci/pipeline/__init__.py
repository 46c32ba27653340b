"""The training pipeline: config, data validation, training, evaluation, the stage cache, the gate.

It never imports delivery, serving or ci (an import-linter contract): it knows nothing of where
models go after training, so its code alone makes the training stage's key.
"""

from __future__ import annotations

from mlci.pipeline._baseline import TOLERANCE, minor_of, python_minor
from mlci.pipeline._baseline import check as check_baseline
from mlci.pipeline._baseline import entry as baseline_entry
from mlci.pipeline._baseline import update as update_baseline
from mlci.pipeline._checks import HEADER as CHECK_HEADER
from mlci.pipeline._checks import CheckFile, checks_path, load_checks, run_checks
from mlci.pipeline._checks import Outcome as CheckOutcome
from mlci.pipeline._checks import rows as check_rows
from mlci.pipeline._checks import save as save_checks
from mlci.pipeline._checks import section as checks_section
from mlci.pipeline._checks import starter as starter_checks
from mlci.pipeline._columns import (
    BOOLEAN,
    INTEGER,
    NUMERIC,
    Column,
    Dialect,
    read_cell,
    read_value,
)
from mlci.pipeline._config import Config, EstimatorSpec, GateConfig, build_estimator, load_config
from mlci.pipeline._data import (
    PARQUET_SUFFIXES,
    Manifest,
    Table,
    accept,
    format_problems,
    is_parquet,
    load_manifest,
    open_csv,
    parse_manifest,
    read_file,
    read_table,
    text_stream,
    validate,
)
from mlci.pipeline._diff import HEADER as DIFF_HEADER
from mlci.pipeline._diff import Change, changes, shown
from mlci.pipeline._diff import rows as diff_rows
from mlci.pipeline._diff import section as diff_section
from mlci.pipeline._evaluate import (
    HEADLINE,
    SUMMARY_HEADER,
    headline,
    headline_text,
    scalar_metrics,
    summary,
    summary_rows,
)
from mlci.pipeline._gate import HEADER as GATE_HEADER
from mlci.pipeline._gate import RESULTS as GATE_RESULTS
from mlci.pipeline._gate import Reference, Verdict, baseline_reference, incomparable, judge
from mlci.pipeline._gate import evaluate as evaluate_gate
from mlci.pipeline._gate import rows as gate_rows
from mlci.pipeline._gate import section as gate_section
from mlci.pipeline._gate import to_dict as verdict_to_dict
from mlci.pipeline._infer import infer_manifest, review_notes
from mlci.pipeline._model import check_sha256, load_verified, loads, read_verified
from mlci.pipeline._predict import load_trained, predict_file, predict_rows
from mlci.pipeline._prepare import MISSING_CATEGORY, PrepareConfig, model_input
from mlci.pipeline._stage import (
    COMPLETE,
    Artifacts,
    Status,
    annotate_lineage,
    python_id,
    read_lineage,
    read_run,
)
from mlci.pipeline._stage import check as stage_status
from mlci.pipeline._task import CLASSIFICATION, REGRESSION, task_of_metrics
from mlci.pipeline._train import (
    Fitted,
    TrainResult,
    fit,
    held_out_features,
    load_data,
    model_threads,
    outputs,
    score_held_out,
    train,
)
from mlci.pipeline._train import section as train_section
from mlci.pipeline._tune import RESULTS as TUNE_RESULTS
from mlci.pipeline._tune import Tuning, tune
from mlci.pipeline._tune import section as tune_section
from mlci.pipeline._tune import to_dict as tuning_to_dict

__all__ = [
    "BOOLEAN",
    "CHECK_HEADER",
    "CLASSIFICATION",
    "COMPLETE",
    "DIFF_HEADER",
    "GATE_HEADER",
    "GATE_RESULTS",
    "HEADLINE",
    "INTEGER",
    "MISSING_CATEGORY",
    "NUMERIC",
    "PARQUET_SUFFIXES",
    "REGRESSION",
    "SUMMARY_HEADER",
    "TOLERANCE",
    "TUNE_RESULTS",
    "Artifacts",
    "Change",
    "CheckFile",
    "CheckOutcome",
    "Column",
    "Config",
    "Dialect",
    "EstimatorSpec",
    "Fitted",
    "GateConfig",
    "Manifest",
    "PrepareConfig",
    "Reference",
    "Status",
    "Table",
    "TrainResult",
    "Tuning",
    "Verdict",
    "accept",
    "annotate_lineage",
    "baseline_entry",
    "baseline_reference",
    "build_estimator",
    "changes",
    "check_baseline",
    "check_rows",
    "check_sha256",
    "checks_path",
    "checks_section",
    "diff_rows",
    "diff_section",
    "evaluate_gate",
    "fit",
    "format_problems",
    "gate_rows",
    "gate_section",
    "headline",
    "headline_text",
    "held_out_features",
    "incomparable",
    "infer_manifest",
    "is_parquet",
    "judge",
    "load_checks",
    "load_config",
    "load_data",
    "load_manifest",
    "load_trained",
    "load_verified",
    "loads",
    "minor_of",
    "model_input",
    "model_threads",
    "open_csv",
    "outputs",
    "parse_manifest",
    "predict_file",
    "predict_rows",
    "python_id",
    "python_minor",
    "read_cell",
    "read_file",
    "read_lineage",
    "read_run",
    "read_table",
    "read_value",
    "read_verified",
    "review_notes",
    "run_checks",
    "save_checks",
    "scalar_metrics",
    "score_held_out",
    "shown",
    "stage_status",
    "starter_checks",
    "summary",
    "summary_rows",
    "task_of_metrics",
    "text_stream",
    "train",
    "train_section",
    "tune",
    "tune_section",
    "tuning_to_dict",
    "update_baseline",
    "validate",
    "verdict_to_dict",
]
