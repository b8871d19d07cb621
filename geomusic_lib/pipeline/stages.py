"""The pipeline's stages: prepare the data, extract features, train a network, fit the
baselines and the ensemble. Notebooks, the orchestrator's runs and the benchmarks call these,
so each stage is written once. Every stage reads and writes through the run's `RunDir`.
"""
from __future__ import annotations

import shutil
from typing import Any, Sequence

from geomusic_lib.data import great_circle_km, RunData, Split, TrackTable, load_run_data
from geomusic_lib.data.frames import frames_for_tracks
from geomusic_lib.data.store import attach_features, prepare_run_data, read_meta
from geomusic_lib.training.ensemble import FittedEnsemble, MemberProbabilities, ensemble_over_splits, ensemble_summary
from geomusic_lib.evaluation.evaluate import prediction_files
from geomusic_lib.core.fileio import atomic_write_json
from geomusic_lib.core.manifest import update_manifest
from geomusic_lib.core.params import Params
from geomusic_lib.predict.predictions import FoldPredictions, read_predictions
from geomusic_lib.core.rundir import RunDir, ensemble_path

ENSEMBLE_NAME = "ensemble"


def prepare_data(params: Params, run: RunDir) -> tuple[TrackTable, list[Split]]:
    """Notebook 01: load the source, split it and write the run's `data/`; the manifest records
    what grouped the split and what happened to identical feature vectors."""
    table, splits = prepare_run_data(params, run)
    if run.manifest.is_file():
        update_manifest(run.path, split_grouping={
            "group_column": table.notes.get("group_column"), "group_note": table.notes.get("group_note"),
            "duplicates": table.notes.get("duplicates")})
    return table, splits


def extract_features(params: Params, run: RunDir) -> dict[str, Any]:
    """Notebook 02: extract features for the run's tracks and write `data/table.parquet`.

    Sources that arrive with their features (UCI, a table with feature columns) need no
    extraction; the returned summary says so.
    """
    import pandas as pd

    from geomusic_lib.features import extract_features as extract

    meta = read_meta(run)
    if meta["feature_names"]:
        return {"extracted": False, "source": meta["source"], "tracks": meta["n_tracks"],
                "features": len(meta["feature_names"])}
    tracks = pd.read_parquet(run.tracks)
    target = params.data.mirage.target if params.data.source == "mirage" else "station"
    features = params.features
    if features.audio.manifest is not None:
        audio = features.audio.model_copy(update={"manifest": params.resolve(features.audio.manifest)})
        features = features.model_copy(update={"audio": audio})
    result = extract(tracks, features, run.features_dir, target=target, seed=params.seed)
    table = attach_features(run, result.features, notes=result.notes)
    return {"extracted": True, **result.coverage, "tracks_with_features": len(table.frame),
            "features": len(table.feature_names)}


def tune_models(params: Params, run: RunDir, names: Sequence[str] | None = None) -> Any:
    """Tune models `names` (default: the run's networks and tree baselines) on the validation rows,
    when `tune.enabled`; a study that is done is only read back. Returns one row per tuned model."""
    from geomusic_lib.training.tune import TUNABLE_BASELINES, tune_model, tuning_summary

    if names is None:
        names = [*params.models, *[b for b in params.baselines if b in TUNABLE_BASELINES]]
    if not params.tune.enabled:
        print("tuning is off (tune.enabled: false): the models train with the settings of the params file")
        return tuning_summary(run).iloc[0:0]
    data = load_run_data(run)
    frames = frames_for_tracks(data.table.frame["track_id"], run.features_dir)
    for name in names:
        tune_model(name, params, run, data, frames=frames)
    summary = tuning_summary(run)
    return summary[summary["model"].isin(names)].reset_index(drop=True)


def effective_params(params: Params, run: RunDir, names: Sequence[str]) -> Params:
    """The params models `names` train with: the file's, plus their tuned settings when `tune.enabled`."""
    from geomusic_lib.training.tune import tuned_params

    return tuned_params(params, run, names)


def train_network(params: Params, run: RunDir, model_name: str) -> Any:
    """Notebooks 03-06: train `model_name` on the run's data (and its frames, when extracted),
    print its size and each fold's best epoch, and return the `TrainResult`. With `tune.enabled`
    it is tuned first (or its stored study is read) and trains with the best settings."""
    from geomusic_lib.training.trainer import train_model

    if params.tune.enabled:
        tune_models(params, run, [model_name])
        params = effective_params(params, run, [model_name])
        print(f"{model_name} trains with its tuned settings: {params.model_dump()['model'].get(model_name)}")
    if model_name in params.train_per_model:
        changed = ", ".join(f"{k}={v}" for k, v in params.train_per_model[model_name].items())
        print(f"{model_name} trains with {changed} (train_per_model), otherwise as `train`")
    data = load_run_data(run)
    frames = frames_for_tracks(data.table.frame["track_id"], run.features_dir)  # None unless extracted
    result = train_model(model_name, data.table, data.splits, params, run.model_dir(model_name),
                         frames=frames, class_info=data.classes)
    print(f"{model_name}: {result.n_parameters:,} trainable parameters")
    for split, fold in zip(data.splits, result.folds):
        if fold.members:
            epochs = ", ".join(f"{m.best_epoch} of {m.epochs_run}" for m in fold.members)
            print(f"{split.name}: a bag of {len(fold.members)} (best epochs {epochs}), test accuracy of their mean "
                  f"{fold.test_accuracy:.3f}")
        else:
            print(f"{split.name}: best epoch {fold.best_epoch} of {fold.epochs_run}, test accuracy {fold.test_accuracy:.3f}")
    return result


def fit_baselines(params: Params, run: RunDir, data: RunData | None = None,
                  names: Sequence[str] | None = None) -> list[str]:
    """Notebook 07: fit the baselines of `params.baselines` on the run's splits; returns their names."""
    from geomusic_lib.training.baselines import MELODY_BASELINES, run_baselines
    from geomusic_lib.training.ngram import run_melodies
    from geomusic_lib.training.tune import TUNABLE_BASELINES

    data = data or load_run_data(run)
    names = list(params.baselines if names is None else names)
    if params.tune.enabled:
        tune_models(params, run, [n for n in names if n in TUNABLE_BASELINES])
        params = effective_params(params, run, names)
    melodies = run_melodies(run) if any(n in MELODY_BASELINES for n in names) else None  # 07's table: features only
    return list(run_baselines(data.table, data.splits, params, run.models_dir, names=names, melodies=melodies))


def fit_ensemble(params: Params, run: RunDir, data: RunData | None = None) -> list[FittedEnsemble]:
    """Notebook 07: fit the run's ensemble when `evaluate.ensemble` is on and every split has
    validation rows; otherwise remove a stale one (so it is not scored) and say why."""
    data = data or load_run_data(run)
    bagged = params.train.bagging.folds_for(len(data.table.frame)) > 1
    why_not = ("evaluate.ensemble is false" if not params.evaluate.ensemble else
               "a split has no validation rows (split.val: 0)"
               if not bagged and any(len(s.val) == 0 for s in data.splits) else None)
    if why_not:
        shutil.rmtree(run.model_dir(ENSEMBLE_NAME), ignore_errors=True)
        print(f"no ensemble: {why_not}")
        return []
    fitted = run_ensemble(run, data, params)
    weighting = "classes weighted" if params.train.class_weights else "classes not weighted"
    for ens in fitted:
        print(f"{ens.notes['split']}: {ens.describe()}   (on {ens.notes['rows']}; objective {ens.objective}, "
              f"{weighting}: ensemble "
              f"{ens.score:.3f}, best member {min(ens.member_scores.values()):.3f}; log-loss "
              f"{ens.val_log_loss:.3f})")
    return fitted


def ensemble_members(run: RunDir, params: Params, members: Sequence[str] | None = None) -> list[str]:
    """The members to combine: by default the networks and baselines of the params that have
    stored predictions, except the majority baseline (it carries no information)."""
    files = prediction_files(run)
    if members is None:
        members = [m for m in (*params.models, *params.baselines) if m in files and m != "majority"]
    unknown = [m for m in members if m not in files or m == ENSEMBLE_NAME]
    if unknown:
        raise FileNotFoundError(f"{run.models_dir}: no predictions.parquet for ensemble member(s) {unknown}; "
                                f"train them first or choose from {sorted(set(files) - {ENSEMBLE_NAME})}")
    if not members:
        raise ValueError(f"no ensemble members: {run.models_dir} holds no predictions besides the majority baseline")
    return list(members)


def run_ensemble(run: RunDir, data: RunData, params: Params, members: Sequence[str] | None = None,
                 extra: Sequence[dict[str, MemberProbabilities]] | None = None) -> list[FittedEnsemble]:
    """Fit a calibrated ensemble of the run's networks and baselines on each split's held-out rows
    (out-of-fold training rows when bagged, else the validation rows); write its test predictions
    and `ensemble.json` to `models/ensemble/`, so evaluation scores it.

    Every member's probabilities come from the files it wrote as it trained
    (`geomusic_lib.training.ensemble_members`). `extra` adds members that are not stored in the run
    (one mapping per split, on the same held-out rows, e.g. a benchmark's extra seeds).
    """
    from geomusic_lib.training.ensemble_members import member_probabilities

    names = ensemble_members(run, params, members)
    params = effective_params(params, run, names).for_tracks(len(data.table.frame))
    stored = {m: read_predictions(run.predictions(m)) for m in names}
    per_split, held_out = member_probabilities(run, data, names, stored, params.train.bagging.folds > 1)
    for i, more in enumerate(extra or []):
        per_split[i].update(more)
    y = data.table.label_indices()
    class_km = None
    if params.ensemble_objective() == "expected_km":
        lat, lon = data.classes["lat"].to_numpy(float), data.classes["lon"].to_numpy(float)
        class_km = great_circle_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    rows_kind = "out-of-fold rows" if params.train.bagging.folds > 1 else "validation rows"
    fitted, test = ensemble_over_splits(per_split, [y[rows] for rows in held_out],
                                        [{"fold": s.fold, "split": s.name, "rows": rows_kind} for s in data.splits],
                                        objective=params.ensemble_objective(), class_km=class_km)
    collected = FoldPredictions(data.table.frame, data.table.classes())
    for split, proba in zip(data.splits, test):
        collected.add(split.fold, split.test, proba)
    atomic_write_json(ensemble_path(run.model_dir(ENSEMBLE_NAME)), ensemble_summary(fitted))  # marks the kind
    collected.write(run.predictions(ENSEMBLE_NAME))
    return fitted

