"""Typed schema for `params/*.yaml`: one file describes one run.

The schema's defaults ARE the default run: `Params()` equals `params/default.yaml`
(a test keeps the two equal), so a file that sets only `data:` runs like default.yaml.
Unknown keys and bad values fail with a message that names the key and the file.
Secrets (Spotify credentials) are deliberately *not* part of this schema: they come
from the environment or `.env` only.
"""
from __future__ import annotations

import re

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from geomusic_lib.core.params_models import (AttentionParams, CnnParams, FcnnParams, ModelParams, NetworkName,  # noqa: F401
                                            RnnParams, Strict, TabmParams, auto_or_at_least_one)
from geomusic_lib.core.params_bagging import BaggingParams  # noqa: F401
from geomusic_lib.core.params_ngram import NGRAM_VIEWPOINTS, NgramSettings  # noqa: F401


class ParamsError(ValueError):
    """A params file is missing, malformed or has an invalid key."""




class UciParams(Strict):
    chromatic: bool = Field(True, description="116 features (default + chroma) instead of 68")
    collapse_chroma: bool = Field(True, description="one column per statistic for the file's 12 identical chroma "
                                                    "copies: 72 features on a 4 x 18 grid (false: all 116, 4 x 29)")


class MirageParams(Strict):
    path: Path = Field(Path("data/raw/MIRAGE.csv"), description="MIRAGE.csv (v1 or legacy export)")
    target: Literal["station", "artist"] = "station"
    level: Literal["country", "region", "continent"] = "country"
    country_source: Literal["ne", "rg"] = Field("ne", description="Natural Earth or Radio Garden country")
    min_reliability: float = Field(0.90, ge=0.0, le=1.0)
    min_tracks_per_class: int = Field(20, ge=1)
    max_events: int | None = Field(None, ge=1, description="read at most this many rows (debugging)")
    cache: bool = Field(True, description="keep the needed columns as parquet after the first read (a rerun skips the CSV)")
    cache_dir: Path | None = Field(None, description="parquet cache folder; None = $GEOMUSIC_CACHE/mirage or ~/.cache/geomusic/mirage")


class FolkParams(Strict):
    """The Essen Folksong Collection inside music21 (`data.source: folk`; see geomusic_lib.data.folk)."""
    level: Literal["country", "china_province"] = "country"
    files: list[str] = Field(default_factory=list, description="Essen file stems to read, e.g. [han1, lux]; empty = all")
    corpus_dir: Path | None = Field(None, description="folder of Essen .abc files; None = the installed music21")
    cache_dir: Path | None = Field(None, description="parsed-note cache; None = ~/.cache/geomusic/folk")
    workers: int | None = Field(None, ge=1, description="parallel parser processes; None = all cores")
    min_notes: int = Field(8, ge=1, description="drop tunes with fewer sounding notes")
    min_tracks_per_class: int = Field(20, ge=1)
    incipit_notes: int = Field(10, ge=0, description="notes of the incipit (pitch + rhythm) that also join variants (0: title only)")


class TableParams(Strict):
    path: Path | None = None
    label_column: str = "label"
    feature_columns: list[str] = Field(default_factory=list, description="empty = every numeric column")
    group_column: str | None = None
    lat_column: str | None = None
    lon_column: str | None = None
    id_column: str | None = None
    min_tracks_per_class: int = Field(1, ge=1, description="smaller classes are dropped, with a note; every class "
                                                        "needs at least 3 tracks (train, validation, test)")
    encoding: str = "utf-8"
    sep: str = Field(",", min_length=1, description="CSV field separator, e.g. ';'")
    decimal: str = Field(".", min_length=1, max_length=1, description="decimal mark of CSV numbers, e.g. ','")


class DataParams(Strict):
    source: Literal["uci", "mirage", "table", "folk"] = "uci"
    uci: UciParams = Field(default_factory=UciParams)
    mirage: MirageParams = Field(default_factory=MirageParams)
    table: TableParams = Field(default_factory=TableParams)
    folk: FolkParams = Field(default_factory=FolkParams)
    max_tracks: int | None = Field(None, ge=1, description="seeded subsample of tracks")
    duplicates: Literal["group", "drop", "keep"] = Field(
        "group", description="rows with identical feature vectors: one split group (group), only the first "
                             "kept (drop), or split like other rows (keep)")


class SplitParams(Strict):
    strategy: Literal["holdout", "kfold"] = "holdout"
    train: float = Field(0.7, gt=0, lt=1)
    val: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    folds: int = Field(10, ge=2)

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> "SplitParams":
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.train + split.val + split.test must be 1.0, got {total:.3f}")
        return self


class SpotifyParams(Strict):
    batch_size: int = Field(100, ge=1, le=100, description="ids per audio-features call (API max 100)")
    search_min_similarity: float = Field(0.85, ge=0, le=1)
    audio_analysis: bool = False
    max_tries: int = Field(6, ge=1)
    timeout_s: float = Field(10.0, gt=0)
    backoff_base_s: float = Field(1.0, gt=0, description="first backoff step on 5xx/timeouts (doubles, full jitter)")
    backoff_max_s: float = Field(60.0, gt=0)
    max_retry_after_s: float = Field(600.0, gt=0, description="stop instead of waiting longer than this on a 429")
    search_limit: int = Field(5, ge=1, le=50, description="candidates per search")
    api_base: str | None = Field(None, description="override the API root (tests use a local fake)")


class AudioParams(Strict):
    manifest: Path | None = Field(None, description="CSV with columns track_id,path")
    sample_rate: int = 22050
    n_mfcc: int = 20
    hop_length: int = 512
    max_frames: int = 1300


class FeatureParams(Strict):
    source: Literal["columns", "spotify", "audio", "metadata", "notes"] = "columns"
    sample_size: int | None = Field(None, ge=1)
    spotify: SpotifyParams = Field(default_factory=SpotifyParams)
    audio: AudioParams = Field(default_factory=AudioParams)
    metadata_fields: list[str] = Field(
        default_factory=lambda: [
            "artist_wd_instruments", "artist_wd_voicetypes", "track_wd_instrumentation",
            "track_wd_language", "artist_wd_genre",
        ]
    )
    metadata_min_count: int = Field(5, ge=1)


class TrainParams(Strict):
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    grad_clip: float = Field(1.0, gt=0)
    patience: int = Field(12, ge=1)
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    class_weights: bool = False
    amp: bool = True
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    geo_smoothing_km: float | None = Field(None, gt=0, description="haversine soft targets: weight of class j for "
                                                                  "true class i ∝ exp(-d_ij / τ km); null = off")
    threads: Literal["auto"] | int = Field("auto", description="torch CPU threads; auto = from the model's size "
                                                              "and the free cores")
    bagging: BaggingParams = Field(default_factory=BaggingParams)

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, value: str | int) -> str | int:
        return auto_or_at_least_one(value, "threads", "threads: 1")


class TuneParams(Strict):
    enabled: bool = Field(False, description="tune each network and tree baseline on the validation rows before it "
                                             "trains (Optuna TPE, median pruning); params/tuned.yaml turns it on")
    trials: int | None = Field(20, ge=1, description="trials per model, stored ones included; null = no limit")
    timeout_s: float | None = Field(None, gt=0, description="seconds of trials per model, stored ones included; "
                                                            "null = no limit")
    splits: int = Field(1, ge=1, description="trials score the held-out rows of this many splits (first ones)")
    folds: int | Literal["auto"] = Field("auto", description="a trial trains k times per split, each scored on one "
                                         "held-out part; auto = train.bagging.folds (1: the validation rows)")
    epochs: int | None = Field(None, ge=1, description="epoch cap of a trial; null = train.epochs")
    warmup_epochs: int = Field(5, ge=0, description="epochs before a trial may be pruned")
    startup_trials: int = Field(5, ge=0, description="trials before pruning (and TPE) start")
    storage: str = Field("sqlite", min_length=1, description="where each model's study lives: sqlite (a file "
                         "under the run, one process), journal (a journal file under the run that local workers "
                         "share), a journal file's path, or an Optuna RDB URL that machines share, e.g. "
                         "postgresql+pg8000://tuner:${PGPASSWORD}@host/db; ${VAR} is read from the environment "
                         "or .env")
    heartbeat_s: int = Field(30, ge=1, description="RDB storage: a worker silent for twice this long has its "
                                                   "trial failed and re-run by the others")

    @model_validator(mode="after")
    def _some_budget(self) -> "TuneParams":
        if self.trials is None and self.timeout_s is None:
            raise ValueError("tune.trials and tune.timeout_s are both null, so tuning would never stop; set one, "
                             "e.g. tune.trials: 20")
        return self

    @model_validator(mode="after")
    def _no_password(self) -> "TuneParams":  # an `after` check: the error never echoes the value
        userinfo = self.storage.partition("://")[2].rpartition("@")[0] if "://" in self.storage else ""
        secret = userinfo.partition(":")[2] if ":" in userinfo else None
        query = self.storage.partition("?")[2].lower()
        if (secret is not None and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", secret)) or "password=" in query:
            raise ValueError("tune.storage holds a password, which would reach the run's manifest and book; write "
                             "it as ${VAR} (e.g. postgresql+pg8000://tuner:${PGPASSWORD}@host/db) and set VAR in "
                             "the environment or .env")
        return self


class EvaluateParams(Strict):
    bootstrap: int = Field(1000, ge=0)
    decision: Literal["argmax", "distance"] = "argmax"
    calibration_bins: int = Field(10, ge=2)
    ci: float = Field(0.95, gt=0, lt=1, description="confidence level of the bootstrap intervals")
    ensemble: bool = Field(True, description="fit a calibrated ensemble of the networks and baselines on the "
                                             "validation rows (geomusic_lib.training.ensemble.run_ensemble)")
    ensemble_objective: Literal["auto", "log_loss", "balanced_log_loss", "balanced_accuracy", "expected_km"] = Field(
        "auto", description="what the ensemble's weights minimise on held-out rows; auto = balanced_log_loss "
                            "when train.class_weights is on, else log_loss")


class InterpretParams(Strict):
    shap_background: int = Field(64, ge=1)
    shap_samples: int = Field(100, ge=1)
    shap_nsamples: int = Field(50, ge=1, description="expected-gradients draws per explained row")
    tree_shap_samples: int = Field(50, ge=1, description="rows explained for the tree baseline (TreeExplainer)")
    tsne_samples: int = Field(600, ge=10)
    tsne_perplexity: float = Field(30.0, gt=1)
    top_countries: int = Field(4, ge=1, description="per-class SHAP for this many classes, chosen on validation rows")
    min_support: int = Field(3, ge=1, description="validation tracks a class needs to be chosen for per-class SHAP")


class PredictParams(Strict):
    top_k: int = Field(5, ge=1)
    countries: list[str] = Field(default_factory=list, description="pin the classes 09 shows; empty: the "
                                 "n_countries classes the model gets right most often on validation rows")
    n_countries: int = Field(4, ge=1, description="classes 09 shows when `countries` is empty")
    min_support: int = Field(3, ge=1, description="validation tracks a class needs to be chosen for 09")
    per_country: int = Field(3, ge=1)
    batch_size: int = Field(1024, ge=1, description="tracks per forward pass")


#: baselines whose estimator takes `class_weight` (knn cannot weigh classes; the majority class is the floor)
WEIGHTED_BASELINES = ("logreg", "random_forest", "hist_gb", "svm", "ngram")


class Params(Strict):
    run_name: str = "default"
    runs_dir: Path = Path("runs")
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataParams = Field(default_factory=DataParams)
    split: SplitParams = Field(default_factory=SplitParams)
    features: FeatureParams = Field(default_factory=FeatureParams)
    models: list[NetworkName] = Field(default_factory=lambda: ["fcnn", "tabm", "cnn", "rnn", "attention"])
    model: ModelParams = Field(default_factory=ModelParams)
    baselines: list[Literal["majority", "logreg", "random_forest", "hist_gb", "svm", "knn", "ngram"]] = Field(
        default_factory=lambda: ["majority", "logreg", "random_forest", "hist_gb", "svm"]
    )
    train: TrainParams = Field(default_factory=TrainParams)
    train_per_model: dict[NetworkName, dict[str, Any]] = Field(
        default_factory=lambda: {"tabm": {"lr": 0.002, "weight_decay": 0.0003, "batch_size": 256},
                                 "rnn": {"lr": 0.003}, "attention": {"lr": 0.003}},
        description="train keys that differ for one network, e.g. {rnn: {lr: 0.003}}; a file that sets "
                    "train_per_model replaces this whole mapping")
    baseline_settings: dict[Literal["random_forest", "hist_gb", "ngram"], dict[str, Any]] = Field(
        default_factory=dict, description="estimator settings of a tree baseline, e.g. {random_forest: "
                                          "{min_samples_leaf: 2}} (tuning writes the best ones), or of the "
                                          "ngram baseline ({ngram: {viewpoints: [interval], orders: [1, 2, 3]}})")
    tune: TuneParams = Field(default_factory=TuneParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    interpret: InterpretParams = Field(default_factory=InterpretParams)
    predict: PredictParams = Field(default_factory=PredictParams)

    @field_validator("baseline_settings")
    @classmethod
    def _valid_ngram_settings(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if "ngram" in value:
            try:
                NgramSettings.model_validate(value["ngram"])
            except ValidationError as err:
                e = err.errors()[0]
                key = ".".join(map(str, e["loc"]))
                raise ValueError(f"baseline_settings.ngram.{key}: {e['msg'].removeprefix('Value error, ')}") from None
        return value

    @field_validator("run_name")
    @classmethod
    def _safe_run_name(cls, value: str) -> str:
        if not value or any(c in value for c in "/\\ ") or value.startswith("."):
            raise ValueError("must be a plain folder name inside runs_dir (no slashes, spaces or leading dot), "
                             "e.g. my_run")
        return value

    @model_validator(mode="after")
    def _valid_train_per_model(self) -> "Params":
        for name, entry in self.train_per_model.items():
            if "bagging" in entry:
                raise ValueError(f"train_per_model.{name}.bagging: every model bags over the same folds; set "
                                 "train.bagging.folds")
            if "class_weights" in entry:
                raise ValueError(f"train_per_model.{name}.class_weights: class weighting is one setting for every "
                                 "model (networks, baselines and the ensemble's objective); set train.class_weights")
            self.train_for(name)
        return self

    def for_tracks(self, n_tracks: int) -> "Params":
        """These params for a table of `n_tracks` tracks: `train.bagging.folds: auto` made a number."""
        if self.train.bagging.folds != "auto":
            return self
        train = self.train.model_copy(update={"bagging": self.train.bagging.model_copy(
            update={"folds": self.train.bagging.folds_for(n_tracks)})})
        return self.model_copy(update={"train": train})

    def ensemble_objective(self) -> str:
        """`evaluate.ensemble_objective`, with `auto` resolved by `train.class_weights`."""
        chosen = self.evaluate.ensemble_objective
        if chosen != "auto":
            return chosen
        return "balanced_log_loss" if self.train.class_weights else "log_loss"

    def baseline_settings_for(self, name: str) -> dict[str, Any]:
        """Estimator settings of baseline `name`: `class_weight: balanced` when `train.class_weights` is on
        and the estimator can weigh classes, then its `baseline_settings` entry."""
        weighted = {"class_weight": "balanced"} if self.train.class_weights and name in WEIGHTED_BASELINES else {}
        return {**weighted, **self.baseline_settings.get(name, {})}

    def train_for(self, model_name: str) -> TrainParams:
        """The train settings of one network: `train` with its `train_per_model` entry on top."""
        override = self.train_per_model.get(model_name, {})
        try:
            return TrainParams.model_validate({**self.train.model_dump(), **override})
        except ValidationError as err:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ValueError(f"train_per_model.{model_name}: {bad}") from None

    def for_model(self, model_name: str) -> "Params":
        """A copy whose `train` section is `train_for(model_name)`, as the trainer sees it."""
        return self.model_copy(update={"train": self.train_for(model_name)})

    _root: Path | None = PrivateAttr(default=None)

    @property
    def root(self) -> Path:
        """The folder relative paths in these params mean: the one holding the params file's
        `params/` folder (set by `load_params`), else the current directory."""
        return self._root if self._root is not None else Path.cwd()

    def resolve(self, path: str | Path) -> Path:
        """A params path (data file, runs folder) made absolute against `root`."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def run_dir(self) -> Path:
        return self.resolve(self.runs_dir) / self.run_name

    def to_plain(self) -> dict[str, Any]:
        """JSON-safe dict (paths as strings), e.g. for checkpoints and manifests."""
        return self.model_dump(mode="json")


#: where a user finds every `data.table` key (README and the book's quick start)
TABLE_DOCS = "every data.table key, with its default, is in the README's section \"Your own data\""


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid parameters"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":  # never echo the value: it may be a misplaced secret
            where = TABLE_DOCS if key.startswith("data.table.") else "see params/default.yaml"
            lines.append(f"  - {key}: unknown key (check spelling; {where}; credentials belong in .env)")
        elif e["type"] == "value_error" and (not e["loc"] or isinstance(e.get("input"), dict)):
            lines.append(f"  - {e['msg'].removeprefix('Value error, ')}")  # a check across keys: it names them
        else:
            docs = f"; {TABLE_DOCS}" if key.startswith("data.table.") else ""
            lines.append(f"  - {key}: {e['msg'].removeprefix('Value error, ')} (got {e.get('input')!r}){docs}")
    return "\n".join(lines)


def params_from_dict(raw: dict[str, Any] | None, source: str = "<dict>") -> Params:
    """Validate a nested dict into `Params`, with errors that name the key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ParamsError(_format_errors(err, source)) from None


def load_params(path: str | Path, overrides: dict[str, Any] | None = None) -> Params:
    """Read a params YAML file; `overrides` is a nested dict merged on top.

    Keys the file leaves out take the schema defaults, which equal params/default.yaml.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found. Use one of params/*.yaml, e.g. params/default.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({_yaml_problem(err)}). Fix that line; "
                          "params/default.yaml shows the expected layout.") from None
    except UnicodeDecodeError as err:
        raise ParamsError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}). Save it as UTF-8.") from None
    if raw is None:
        raise ParamsError(f"{path}: the params file is empty (or only comments). Set at least one key, e.g. "
                          "`run_name: my_run`; every key you leave out takes its value from params/default.yaml.")
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of keys (like `run_name: my_run`) at the top level, "
                          f"found a {type(raw).__name__}. See params/default.yaml for the layout.")
    params = params_from_dict(deep_merge(raw, overrides or {}), source=str(path))
    params._root = project_root_for(path)
    return params


def project_root_for(params_file: str | Path) -> Path:
    """The folder that relative paths in a params file are resolved against: the folder
    holding `params/` when the file lies in a folder named `params`, else its own folder."""
    path = Path(params_file).resolve()
    return path.parent.parent if path.parent.name == "params" else path.parent


def _yaml_problem(err: yaml.YAMLError) -> str:
    """'<problem> at line L, column C' from a YAML error, on one line."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def with_overrides(params: Params, overrides: dict[str, Any], source: str = "overrides") -> Params:
    """A validated copy of `params` with a nested dict merged on top; relative paths keep their meaning."""
    merged = params_from_dict(deep_merge(params.to_plain(), overrides), source=source)
    merged._root = params._root
    return merged


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `extra` into a copy of `base`."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
