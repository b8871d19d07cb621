"""Tuning as a stage: Optuna's TPE sampler proposes settings for one network or tree baseline,
each trial is scored on held-out rows of the run's first `tune.splits` splits (never a test row),
and the median pruner stops network trials whose per-epoch validation loss lags.

With `tune.folds` k > 1 (by default the run's `train.bagging.folds`), a trial trains k times per
split, on the parts a bag would use, and is scored on every training row once, out of fold: the
score no longer hangs on one small validation split. With k = 1 it is the split's validation rows.

Each model's study lives in its own SQLite file (`RunDir.tuning_db`), so a killed tuning run
resumes from the stored trials, and the budget (`tune.trials`, `tune.timeout_s`) counts them.
With `tune.storage` a journal file or an RDB URL (`tune_storage`), several workers
(`geomusic tune --worker`) share one study and finish its budget together.
The best settings go to `RunDir.tuning_best` as params overrides; `tuned_params` applies them.
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from geomusic_lib.training.baselines import baseline_proba, fit_baseline
from geomusic_lib.data import RunData, Split
from geomusic_lib.core.fileio import atomic_write_json
from geomusic_lib.core.params import Params, TuneParams, deep_merge, with_overrides
from geomusic_lib.core.progress import progress_bar
from geomusic_lib.core.rundir import RunDir
from geomusic_lib.training.bagging import split_members
from geomusic_lib.training.trainer import train_model
from geomusic_lib.training.tune_storage import (StudyStore, from_record, open_storage, recover_dead_trials,
                                                study_store, worker_id, worker_seed_offset, POLL_S)

TUNABLE_BASELINES = ("random_forest", "hist_gb")
FINISHED = ("COMPLETE", "PRUNED")
FIRST_TRIAL_WAIT_S = 30.0  # how long a worker that loads a new shared study waits for its creator's trial 0


# --------------------------------------------------------------------------- search spaces
def _optimiser(trial, lr: tuple[float, float] = (3e-4, 5e-3)) -> dict[str, Any]:
    return {"lr": trial.suggest_float("lr", *lr, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-5, 0.1, log=True)}


def _fcnn(trial) -> dict[str, Any]:
    width, layers = trial.suggest_categorical("width", [128, 256, 512, 1024]), trial.suggest_int("layers", 1, 3)
    model = {"hidden": [max(32, width // 2 ** i) for i in range(layers)],
             "dropout": trial.suggest_float("dropout", 0.0, 0.6)}
    return {"model": {"fcnn": model}, "train_per_model": {"fcnn": _optimiser(trial)}}


def _tabm(trial) -> dict[str, Any]:
    model = {"n_blocks": trial.suggest_int("n_blocks", 1, 3), "d_block": trial.suggest_int("d_block", 64, 512, step=64),
             "dropout": trial.suggest_float("dropout", 0.0, 0.5), "n_bins": trial.suggest_int("n_bins", 8, 64),
             "d_embedding": trial.suggest_int("d_embedding", 4, 16, step=4)}
    return {"model": {"tabm": model}, "train_per_model": {"tabm": _optimiser(trial, (5e-4, 5e-3))}}


def _cnn(trial) -> dict[str, Any]:
    channels = trial.suggest_categorical("channels", ["32,64", "32,64,128", "64,128,256"])
    model = {"channels": [int(c) for c in channels.split(",")], "dropout": trial.suggest_float("dropout", 0.0, 0.6)}
    return {"model": {"cnn": model}, "train_per_model": {"cnn": _optimiser(trial)}}


def _recurrent(name: str) -> Callable[[Any], dict[str, Any]]:
    def space(trial) -> dict[str, Any]:
        model = {"hidden": trial.suggest_int("hidden", 32, 128, step=32),
                 "dropout": trial.suggest_float("dropout", 0.0, 0.6)}
        return {"model": {name: model}, "train_per_model": {name: _optimiser(trial, (5e-4, 5e-3))}}
    return space


def _random_forest(trial) -> dict[str, Any]:
    return {"baseline_settings": {"random_forest": {
        "n_estimators": trial.suggest_int("n_estimators", 100, 500, step=100),
        "max_features": trial.suggest_float("max_features", 0.05, 0.6),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 8)}}}


def _hist_gb(trial) -> dict[str, Any]:
    return {"baseline_settings": {"hist_gb": {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_iter": trial.suggest_int("max_iter", 50, 300, step=50),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 7, 63),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 40),
        "max_features": trial.suggest_float("max_features", 0.2, 1.0),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True)}}}


#: Each model's search space: a trial's suggestions as params overrides (paper ranges narrowed to small data).
SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "fcnn": _fcnn, "tabm": _tabm, "cnn": _cnn, "rnn": _recurrent("rnn"), "attention": _recurrent("attention"),
    "random_forest": _random_forest, "hist_gb": _hist_gb,
}


def _log_range(value: float, low: float, high: float) -> float:
    return float(min(max(value, low), high))


def current_settings(name: str, params: Params) -> dict[str, Any]:
    """The search-space values closest to the settings `params` gives model `name`: the study's
    first trial, so tuning can only find settings that beat the params file's on validation."""
    model, train = getattr(params.model, name, None), params.train_for(name) if name in SPACES else None
    optimiser = {"lr": _log_range(train.lr, 3e-4 if name in ("fcnn", "cnn") else 5e-4, 5e-3),
                 "weight_decay": _log_range(train.weight_decay, 1e-5, 0.1)} if name not in TUNABLE_BASELINES else {}
    if name == "fcnn":
        width = min((128, 256, 512, 1024), key=lambda w: abs(w - model.hidden[0]))
        return {"width": width, "layers": min(3, len(model.hidden)), "dropout": min(model.dropout, 0.6),
                **optimiser}
    if name == "tabm":
        return {"n_blocks": min(3, model.n_blocks), "d_block": min(512, max(64, model.d_block // 64 * 64)),
                "dropout": min(model.dropout, 0.5), "n_bins": min(64, max(8, model.n_bins)),
                "d_embedding": min(16, max(4, model.d_embedding // 4 * 4)), **optimiser}
    if name == "cnn":
        channels = ",".join(map(str, model.channels))
        return {"channels": channels if channels in ("32,64", "32,64,128") else "64,128,256",
                "dropout": min(model.dropout, 0.6), **optimiser}
    if name in ("rnn", "attention"):
        return {"hidden": min(128, max(32, model.hidden // 32 * 32)), "dropout": min(model.dropout, 0.6), **optimiser}
    if name == "random_forest":  # the defaults of baselines.py (max_features "sqrt" as a share of the features)
        return {"n_estimators": 500, "max_features": 0.1, "min_samples_leaf": 1}
    return {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 15, "min_samples_leaf": 20,
            "max_features": 0.5, "l2_regularization": 1e-4}


def _optuna():
    """The optuna module, or an error that says how to install it."""
    try:
        import optuna
    except ImportError:
        raise ImportError("tune.enabled needs Optuna: pip install 'geomusic[tune]' (or pip install optuna), "
                          "or set tune.enabled: false") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def overrides_of(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The params overrides of a trial's flat settings (`trial.params`) for model `name`."""
    return SPACES[name](_optuna().trial.FixedTrial(settings))


# --------------------------------------------------------------------------- objectives
def tune_folds(params: Params, n_tracks: int) -> int:
    """The k of `tune.folds` on a table of `n_tracks` tracks (`auto`: the run's `train.bagging.folds`)."""
    k = params.train.bagging.folds_for(n_tracks) if params.tune.folds == "auto" else int(params.tune.folds)
    if k < 1:
        raise ValueError(f"tune.folds is {params.tune.folds}; set a whole number ≥ 1 or auto")
    return k


def trial_splits(data: RunData, params: Params) -> list[Split]:
    """The parts a trial trains and is scored on: for each of the first `tune.splits` splits, its
    `tune.folds` grouped, stratified parts (one part: the split itself), numbered 0, 1, ... and
    without test rows."""
    k = tune_folds(params, len(data.table.frame))
    parts = [p for split in data.splits[:params.tune.splits] for p in split_members(data.table, split, params, k)]
    if any(len(p.val) == 0 for p in parts):
        raise ValueError("tuning scores settings on held-out rows, but a split has no validation rows; set "
                         "split.val > 0 (e.g. 0.1), tune.folds > 1, or tune.enabled: false")
    return [Split(i, p.train, p.val, np.array([], dtype=int)) for i, p in enumerate(parts)]


def _pooled(losses: Sequence[float], sizes: Sequence[int]) -> float:
    """The log-loss over all held-out rows of the parts (a mean weighted by each part's rows)."""
    return float(np.average(losses, weights=sizes))


def _network_objective(name: str, params: Params, data: RunData, frames) -> Callable[[Any], float]:
    """Best validation loss of a network trained with the trial's settings, pooled over the trial's parts."""
    optuna = _optuna()
    splits = trial_splits(data, params)
    epochs = params.tune.epochs or params.train_for(name).epochs

    def objective(trial) -> float:
        overrides = deep_merge(SPACES[name](trial), {"train_per_model": {name: {"epochs": epochs}},
                                                     "train": {"bagging": {"folds": 1}}})  # the parts are the folds
        trial_params = with_overrides(params, overrides, source=f"tuning trial {trial.number} of {name}")
        best: dict[int, float] = {}

        def report(fold: int, row: dict[str, float]) -> None:
            best[fold] = min(best.get(fold, math.inf), row["val_loss"])
            trial.report(row["val_loss"], fold * epochs + int(row["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned()

        with tempfile.TemporaryDirectory(prefix=f"tune_{name}_") as tmp:
            try:
                train_model(name, data.table, splits, trial_params, tmp, frames=frames, progress=False,
                            class_info=data.classes, on_epoch=report)
            except ValueError as err:
                if "diverged" not in str(err):
                    raise
                raise optuna.TrialPruned(f"diverged: {err}") from None
        return _pooled([best[s.fold] for s in splits], [len(s.val) for s in splits])
    return objective


def trial_settings(name: str, params: Params, trial) -> dict[str, Any]:
    """Tree baseline `name`'s settings for a trial: the params file's (`max_train_rows` and any key the
    search does not cover) with the trial's suggestions on top."""
    return {**params.baseline_settings_for(name), **SPACES[name](trial)["baseline_settings"][name]}


def _baseline_objective(name: str, params: Params, data: RunData) -> Callable[[Any], float]:
    """Log-loss of the baseline fitted on each part's training rows, pooled over the parts' held-out rows."""
    x, y, n_classes = data.table.features, data.table.label_indices(), len(data.table.classes())
    splits = trial_splits(data, params)

    def objective(trial) -> float:
        settings = trial_settings(name, params, trial)
        losses = []
        for split in splits:
            fitted = fit_baseline(name, params.seed + split.fold, x[split.train], y[split.train], settings)
            proba = np.clip(baseline_proba(fitted, x[split.val], n_classes), 1e-6, 1.0)
            losses.append(log_loss(y[split.val], proba / proba.sum(1, keepdims=True), labels=np.arange(n_classes)))
        return _pooled(losses, [len(s.val) for s in splits])
    return objective


# --------------------------------------------------------------------------- studies
def storage_of(run: RunDir, name: str, params: Params) -> StudyStore:
    """Where model `name`'s study lives under `tune.storage` (`tune_storage.study_store`)."""
    return study_store(run, name, params.tune, params.resolve)


def _create_or_load(optuna, store: StudyStore, params: Params, pruner, first: dict[str, Any]):
    """The study, with trial 0 (`first`, the params file's settings) enqueued once. On a shared storage
    its creator enqueues it at once; a worker that loads the study waits for it (and enqueues it itself
    if the creator died before it could), so no worker's sampler takes trial 0's place."""
    storage = open_storage(store, params.tune.heartbeat_s)
    if not store.shared:
        study = optuna.create_study(study_name=store.study_name, storage=storage, load_if_exists=True,
                                    direction="minimize", pruner=pruner)
        if not study.trials:
            study.enqueue_trial(first)
        return study
    try:
        study = optuna.create_study(study_name=store.study_name, storage=storage, direction="minimize", pruner=pruner)
        study.enqueue_trial(first)
        return study
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=store.study_name, storage=storage, pruner=pruner)
    deadline = time.monotonic() + FIRST_TRIAL_WAIT_S
    while not study.get_trials(deepcopy=False) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(first)
    return study


def open_study(run: RunDir, name: str, params: Params, n_tracks: int):
    """Model `name`'s study under `tune.storage`, created or resumed. Its first trial is the params
    file's settings. In the run's SQLite file, a trial a killed run left running is marked failed (it
    never counts); on a shared storage, only the trials of dead workers are (`recover_dead_trials`).
    The sampler's seed moves on by the number of stored trials (and, shared, by a worker's own
    offset), so a resumed study never proposes its first trials again. `n_tracks`: the table's size
    (it sets `tune.folds: auto`)."""
    optuna = _optuna()
    store = storage_of(run, name, params)
    if not store.shared:
        Path(store.target).parent.mkdir(parents=True, exist_ok=True)
    tp = params.tune
    pruner = optuna.pruners.MedianPruner(n_startup_trials=tp.startup_trials, n_warmup_steps=tp.warmup_epochs)
    study = _create_or_load(optuna, store, params, pruner, current_settings(name, params))
    k = tune_folds(params, n_tracks)
    scored_on = f"{tp.splits} split(s), " + (f"{k} out-of-fold parts each" if k > 1 else "validation rows")
    stored = study.user_attrs.get("scored_on", scored_on if study.trials else None)
    if stored not in (None, scored_on):
        raise ValueError(f"{store.shown} (study {store.study_name}): this study's trials were scored on {stored}, "
                         f"not on {scored_on} (tune.splits, tune.folds); restore those settings, or delete that "
                         f"{'study' if store.kind == 'rdb' else 'file'} to tune again")
    study.set_user_attr("scored_on", scored_on)
    if store.shared:
        recover_dead_trials(study)
    else:
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    study.sampler = optuna.samplers.TPESampler(
        seed=params.seed + len(study.trials) + (worker_seed_offset() if store.shared else 0),
        n_startup_trials=tp.startup_trials, constant_liar=store.shared)
    return study


def _finished(study) -> list:
    return [t for t in study.trials if t.state.name in FINISHED]


def _seconds(trials: Sequence) -> float:
    return float(sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                     if t.datetime_complete and t.datetime_start))


def remaining_budget(study, tp: TuneParams) -> tuple[int | None, float | None]:
    """Trials and seconds left for this study: `tune.trials` and `tune.timeout_s` minus the stored trials."""
    done = _finished(study)
    trials = None if tp.trials is None else max(0, tp.trials - len(done))
    seconds = None if tp.timeout_s is None else max(0.0, tp.timeout_s - _seconds(done))
    return trials, seconds


class _Surplus(Exception):
    """A worker's trial that would pass `tune.trials`: other workers ran or run the last ones."""


def _shared_optimize(study, objective: Callable[[Any], float], tp: TuneParams, tick) -> None:
    """Run trials with the other workers of a shared study until its budget is spent: a trial that
    would pass `tune.trials` is failed unrun, and while the last trials run elsewhere this worker
    waits, to re-run one whose worker dies."""
    optuna, me = _optuna(), worker_id()

    def guarded(trial) -> float:
        trial.set_user_attr("worker", me)
        ahead = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number
                 and t.state.name in (*FINISHED, "RUNNING")]
        if tp.trials is not None and len(ahead) >= tp.trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"tune.trials ({tp.trials}) reached by the other workers")
        return objective(trial)

    while True:
        recover_dead_trials(study)
        n_left, seconds_left = remaining_budget(study, tp)
        if n_left == 0 or seconds_left == 0:
            return
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        if n_left is not None and states.count("RUNNING") >= n_left and "WAITING" not in states:
            time.sleep(POLL_S)
            continue
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # a surplus trial is no failure to report
        try:  # (any other error of a trial still ends the worker, with its traceback)
            study.optimize(guarded, n_trials=1, callbacks=[tick], catch=(_Surplus,))
        finally:
            optuna.logging.set_verbosity(verbosity)


def tune_model(name: str, params: Params, run: RunDir, data: RunData, frames=None,
               progress: bool = True) -> dict[str, Any]:
    """Run (or resume, or join) model `name`'s study within its budget; write and return its best settings."""
    if name not in SPACES:
        raise ValueError(f"tune: no search space for {name!r}; tunable models are {sorted(SPACES)}")
    trial_splits(data, params)  # a clear error before the study opens
    store = storage_of(run, name, params)
    study = open_study(run, name, params, len(data.table.frame))
    n_left, seconds_left = remaining_budget(study, params.tune)
    if n_left != 0 and seconds_left != 0:
        objective = (_baseline_objective(name, params, data) if name in TUNABLE_BASELINES
                     else _network_objective(name, params, data, frames))
        bar, ran = progress_bar(total=n_left, desc=f"tuning {name}", enabled=progress), []

        def tick(study, trial) -> None:
            if trial.user_attrs.get("surplus"):
                return
            bar.update(1)
            ran.append(trial.number)
            if any(t.state.name == "COMPLETE" for t in study.trials):
                bar.set_postfix(best=f"{study.best_value:.3f}")
        t0 = time.perf_counter()
        if store.shared:
            print(f"tuning {name}: worker {worker_id()} on study {store.study_name} at {store.shown}")
            _shared_optimize(study, objective, params.tune, tick)
        else:
            study.optimize(objective, n_trials=n_left, timeout=seconds_left, callbacks=[tick], catch=())
        bar.close()
        print(f"tuning {name}: {len(ran)} new trial(s) in {time.perf_counter() - t0:.0f} s")
    return _write_best(name, study, run, store)


def _write_best(name: str, study, run: RunDir, store: StudyStore) -> dict[str, Any]:
    done = _finished(study)
    complete = [t for t in done if t.state.name == "COMPLETE"]
    if not complete:
        raise RuntimeError(f"tuning {name}: no trial finished (all {len(done)} were pruned or failed); raise "
                           f"tune.trials or tune.timeout_s, or delete study {store.study_name} at {store.shown} "
                           "to start over")
    best = min(complete, key=lambda t: t.value)
    summary = {"model": name, "metric": "held-out log-loss", "scored_on": study.user_attrs.get("scored_on", ""),
               "best_value": best.value, "best_trial": best.number,
               "settings": best.params, "overrides": overrides_of(name, best.params),
               "trials_complete": len(complete), "trials_pruned": len(done) - len(complete),
               "seconds": round(_seconds(done), 1), "storage": store.record()}
    atomic_write_json(run.tuning_best(name), summary)
    return summary


# --------------------------------------------------------------------------- results
def tuned_params(params: Params, run: RunDir, names: Sequence[str]) -> Params:
    """`params` with the stored best settings of models `names` on top (when `tune.enabled`)."""
    if not params.tune.enabled:
        return params
    overrides: dict[str, Any] = {}
    for name in names:
        path = run.tuning_best(name)
        if path.is_file():
            overrides = deep_merge(overrides, json.loads(path.read_text(encoding="utf-8"))["overrides"])
    return with_overrides(params, overrides, source=f"{run.tuning_dir}/*/best_params.json") if overrides else params


def tuning_summary(run: RunDir) -> pd.DataFrame:
    """One row per tuned model: trials, time, best held-out log-loss and the best settings."""
    rows = []
    for path in sorted(run.tuning_dir.glob("*/best_params.json")):
        best = json.loads(path.read_text(encoding="utf-8"))
        rows.append({"model": best["model"], "scored on": best.get("scored_on", "validation rows"),
                     "trials": best["trials_complete"] + best["trials_pruned"],
                     "pruned": best["trials_pruned"], "seconds": best["seconds"],
                     "best held-out log-loss": round(best["best_value"], 4),
                     "best settings": ", ".join(f"{k}={_short(v)}" for k, v in best["settings"].items())})
    return pd.DataFrame(rows, columns=["model", "scored on", "trials", "pruned", "seconds", "best held-out log-loss",
                                       "best settings"])


def trials_table(run: RunDir, name: str, params: Params | None = None) -> pd.DataFrame:
    """Every stored trial of model `name`: number, state, held-out log-loss, seconds and settings. The
    study is found under `params.tune.storage`, else where `best_params.json` says, else in SQLite."""
    optuna = _optuna()
    best = run.tuning_best(name)
    store = (storage_of(run, name, params) if params is not None else
             from_record(run, name, json.loads(best.read_text(encoding="utf-8")).get("storage")
                         if best.is_file() else None))
    if store.kind != "rdb" and not Path(store.target).is_file():
        return pd.DataFrame(columns=["trial", "state", "held-out log-loss", "seconds"])
    study = optuna.load_study(study_name=store.study_name, storage=open_storage(store, 60))
    rows = [{"trial": t.number, "state": t.state.name.lower(), "held-out log-loss": t.value,
             "seconds": round(_seconds([t]), 1), **{k: _short(v) for k, v in t.params.items()}}
            for t in study.trials]
    return pd.DataFrame(rows)


def _short(value: Any) -> Any:
    return float(f"{value:.3g}") if isinstance(value, float) else value
