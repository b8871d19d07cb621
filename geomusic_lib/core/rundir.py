"""`RunDir`: every path and file format under `runs/<run_name>/`, in one place.

Library code, notebooks and benchmarks ask a `RunDir` for paths instead of joining folder
names by hand, so the layout below is the only copy of it:

    runs/<name>/manifest.json              what made the run (params, versions, commit)
    runs/<name>/data/                      tracks, table, meta, classes, splits
    runs/<name>/features/                  extracted features, request cache, frames/
    runs/<name>/models/<model>/[fold_k/]   checkpoints, history; predictions per model
    runs/<name>/eval/                      metrics and per-class tables
    runs/<name>/tuning/<model>/            Optuna study (SQLite or journal) and the best settings of one model
    runs/<name>/logs/                      kernel logs of the orchestrator
    runs/<name>/book/                      this run's book: sources, executed copies, generated
                                           pages (book/notebooks, book/_generated), _build/html
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

CHECKPOINT_KINDS = ("best", "last")


def read_run_csv(path: str | Path) -> pd.DataFrame:
    """The one CSV read policy for run files: only an empty cell is missing, so a class or
    region named "NA" (Namibia) stays a string."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _inside(*parts: str) -> property:
    """A read-only attribute: the path `parts` below the run folder."""
    return property(lambda self: self.path.joinpath(*parts), doc=f"`{'/'.join(parts)}` of the run")


@dataclass(frozen=True)
class RunDir:
    """The folder of one run; every method returns a path inside it (nothing is created)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    manifest = _inside("manifest.json")
    lock = _inside(".lock")
    data_dir = _inside("data")
    tracks = _inside("data", "tracks.parquet")
    table = _inside("data", "table.parquet")
    meta = _inside("data", "meta.json")
    classes = _inside("data", "classes.csv")
    splits = _inside("data", "splits.json")
    features_dir = _inside("features")
    models_dir = _inside("models")
    eval_dir = _inside("eval")
    metrics_csv = _inside("eval", "metrics.csv")
    metrics_json = _inside("eval", "metrics.json")
    tuning_dir = _inside("tuning")
    logs_dir = _inside("logs")
    book_dir = _inside("book")  # this run's book: a copy of the sources plus its executed notebooks
    book_notebooks = _inside("book", "book", "notebooks")
    book_generated = _inside("book", "book", "_generated")
    book_html = _inside("book", "_build", "html")

    def read_classes(self) -> pd.DataFrame:
        """`classes.csv` with the run CSV policy; a missing file names the notebook that writes it."""
        if not self.classes.is_file():
            raise FileNotFoundError(f"{self.classes}: not found. Run 01_data_prep for this run first.")
        return read_run_csv(self.classes)

    def model_dir(self, model: str) -> Path:
        return self.models_dir / model

    def fold_dir(self, model: str, fold: int = -1) -> Path:
        """A holdout split (fold -1) trains in the model's folder, fold k in `fold_<k>/`."""
        return fold_dir(self.model_dir(model), fold)

    def checkpoint(self, model: str, fold: int = -1, kind: str = "best") -> Path:
        return checkpoint_path(self.fold_dir(model, fold), kind)

    def predictions(self, model: str) -> Path:
        return predictions_path(self.model_dir(model))

    def oof(self, model: str) -> Path:
        return oof_path(self.model_dir(model))

    def model_names(self) -> list[str]:
        """Models and baselines that wrote predictions, sorted by name."""
        return sorted(p.parent.name for p in self.models_dir.glob(f"*/{PREDICTIONS_FILE}"))

    def per_class(self, model: str) -> Path:
        return self.eval_dir / "per_class" / f"{model}.csv"

    def read_per_class(self, model: str) -> pd.DataFrame:
        return read_run_csv(self.per_class(model))

    def tuning_db(self, model: str) -> Path:
        """The SQLite file of model `model`'s Optuna study (one per model, so notebooks tune in parallel)."""
        return self.tuning_dir / model / "study.db"

    def tuning_journal(self, model: str) -> Path:
        """The journal file of model `model`'s study with `tune.storage: journal` (local workers share it)."""
        return self.tuning_dir / model / "journal.log"

    def tuning_best(self, model: str) -> Path:
        """`best_params.json`: the best trial's settings as params overrides, with the study's counts and time."""
        return self.tuning_dir / model / "best_params.json"

    def log(self, notebook: str) -> Path:
        return self.logs_dir / f"{notebook}.log"


# Inside one model folder (the trainer and baselines receive the folder, not the run).
PREDICTIONS_FILE = "predictions.parquet"
OOF_FILE = "oof.parquet"  # a bagged model's out-of-fold probabilities on its training rows (predictions format)
HISTORY_FILE = "history.csv"
ENSEMBLE_FILE = "ensemble.json"  # the fitted weights; its presence marks a model folder as an ensemble


def fold_dir(model_dir: str | Path, fold: int = -1) -> Path:
    return Path(model_dir) if fold < 0 else Path(model_dir) / f"fold_{fold}"


def checkpoint_path(folder: str | Path, kind: str = "best") -> Path:
    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f"checkpoint kind {kind!r}: choose one of {CHECKPOINT_KINDS}")
    return Path(folder) / f"checkpoint_{kind}.pt"


def history_path(folder: str | Path) -> Path:
    return Path(folder) / HISTORY_FILE


def predictions_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / PREDICTIONS_FILE


def oof_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / OOF_FILE


def bag_member_dir(folder: str | Path, member: int) -> Path:
    """Where member `member` of a bag trains, inside the split's folder."""
    return Path(folder) / f"bag_{member}"


def ensemble_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / ENSEMBLE_FILE
