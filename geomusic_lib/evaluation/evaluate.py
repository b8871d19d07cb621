"""Evaluate a run: score every `models/<name>/predictions.parquet` with `geomusic_lib.evaluation.metrics`,
write `eval/`, and choose the best network (on validation loss, never the test split).
Reads run files through `RunDir`; never trains."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from geomusic_lib.core.fileio import atomic_write_csv, atomic_write_json
from geomusic_lib.evaluation.metrics import HEADLINE, evaluate_predictions, per_class_metrics
from geomusic_lib.predict.predictions import read_predictions
from geomusic_lib.core.rundir import HISTORY_FILE, RunDir, ensemble_path, history_path, read_run_csv

if TYPE_CHECKING:
    from geomusic_lib.core.params import EvaluateParams, Params


KIND_ORDER = {"model": 0, "ensemble": 1, "baseline": 2}


def _run(run: RunDir | str | Path) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(run)


def prediction_files(run: RunDir | str | Path) -> dict[str, Path]:
    """`models/<name>/predictions.parquet` of a run, by name."""
    run = _run(run)
    return {name: run.predictions(name) for name in run.model_names()}


def model_kind(model_dir: str | Path) -> str:
    """'ensemble' for the ensemble stage's output, 'model' for a trained network (it has a
    history or checkpoint), else 'baseline'."""
    model_dir = Path(model_dir)
    if ensemble_path(model_dir).is_file():
        return "ensemble"
    trained = any(model_dir.glob(f"**/{HISTORY_FILE}")) or any(model_dir.glob("**/checkpoint_*.pt"))
    return "model" if trained else "baseline"


def load_history(model_dir: str | Path) -> pd.DataFrame:
    """Training history of a model: `history.csv`, or every `fold_<k>/history.csv` with a `fold` column;
    a bag's members (`[fold_<k>/]bag_<j>/history.csv`) add a `member` column."""
    model_dir = Path(model_dir)
    parts = []
    for path in sorted(model_dir.glob(f"**/{HISTORY_FILE}"), key=lambda p: _history_key(model_dir, p)):
        fold, member = _history_key(model_dir, path)
        frame = pd.read_csv(path).assign(fold=fold)
        parts.append(frame.assign(member=member) if member >= 0 else frame)
    if not parts:
        raise FileNotFoundError(f"{model_dir}: no history.csv (nor fold_*/history.csv). Train the model first.")
    return pd.concat(parts, ignore_index=True)


def _history_key(model_dir: Path, path: Path) -> tuple[int, int]:
    """(fold, bag member) of a history file from its folders: -1 where there is none."""
    fold = member = -1
    for part in path.parent.relative_to(model_dir).parts:
        kind, _, number = part.partition("_")
        if kind == "fold" and number.isdigit():
            fold = int(number)
        elif kind == "bag" and number.isdigit():
            member = int(number)
    return fold, member


def evaluate_run(run: RunDir | str | Path, params: "EvaluateParams | Params | None" = None,
                 seed: int | None = None) -> pd.DataFrame:
    """Evaluate every model and baseline of a run; write `eval/metrics.{json,csv}` and
    `eval/per_class/<name>.csv`. Returns the comparison table (one row per model)."""
    from geomusic_lib.core.params import EvaluateParams

    run = _run(run)
    if hasattr(params, "evaluate"):  # a full Params
        seed = params.seed if seed is None else seed
        params = params.evaluate
    params = params or EvaluateParams()
    seed = 42 if seed is None else seed
    files = prediction_files(run)
    if not files:
        raise FileNotFoundError(f"{run.models_dir}: no */predictions.parquet found. Train the models and baselines first.")
    classes_df = run.read_classes()
    records = []
    for name, path in files.items():
        pred = read_predictions(path)
        metrics = evaluate_predictions(pred, classes_df, decision=params.decision, bootstrap=params.bootstrap,
                                       seed=seed, calibration_bins=params.calibration_bins, ci=params.ci)
        records.append({"model": name, "kind": model_kind(path.parent), "decision": params.decision, **metrics})
        atomic_write_csv(per_class_metrics(pred, classes_df, params.decision), run.per_class(name))
    table = pd.DataFrame(records)
    table = table.sort_values(["kind", "model"], key=lambda c: c.map(KIND_ORDER) if c.name == "kind" else c,
                              kind="mergesort").reset_index(drop=True)
    atomic_write_csv(table, run.metrics_csv)
    payload = {"decision": params.decision, "bootstrap": params.bootstrap, "calibration_bins": params.calibration_bins,
               "ci": params.ci, "seed": seed, "headline": HEADLINE,
               "models": json.loads(table.to_json(orient="records"))}
    atomic_write_json(run.metrics_json, payload)
    return table


def load_metrics(run: RunDir | str | Path) -> pd.DataFrame:
    """The comparison table written by `evaluate_run`."""
    path = _run(run).metrics_csv
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics yet. Run the evaluation stage first.")
    return read_run_csv(path)


def validation_loss(model_dir: str | Path) -> float:
    """A network's best validation loss (the early-stopping criterion), averaged over folds;
    NaN when the run has no validation rows (or no history)."""
    try:
        history = load_history(model_dir)
    except FileNotFoundError:
        return float("nan")
    if "val_loss" not in history.columns or history["val_loss"].isna().all():
        return float("nan")
    by = ["fold", "member"] if "member" in history.columns else ["fold"]
    return float(history.groupby(by)["val_loss"].min().mean())


def best_network(run: RunDir | str | Path, fold: int = -1, tabular: bool = False) -> tuple[str, Path]:
    """The trained network of the run with the lowest validation loss (chosen on the validation
    split, never the test split; the test accuracy in `eval/metrics.csv` only breaks ties and
    stands in when there are no validation rows), and its best checkpoint. `tabular=True`
    passes over networks that read frame sequences (SHAP needs a fixed set of input features)."""
    from geomusic_lib.models.checkpoint import load_checkpoint

    run = _run(run)
    metrics = load_metrics(run)
    models = metrics[metrics["kind"] == "model"].copy()
    models["val_loss"] = [validation_loss(run.model_dir(m)) for m in models["model"]]
    names = models.sort_values(["val_loss", "accuracy"], ascending=[True, False], na_position="last",
                               kind="mergesort")["model"]
    if names.empty:
        raise FileNotFoundError(f"{run.metrics_csv}: no trained network. Run notebooks 03-06 and 07.")
    for name in map(str, names):
        path = run.checkpoint(name, fold)
        if not tabular or load_checkpoint(path)["view"] != "frames":
            return name, path
    raise FileNotFoundError(f"{run.models_dir}: every network reads frame sequences; SHAP needs one on a "
                            "tabular view (e.g. add fcnn to `models`, or set a model's view to grid or tokens)")
