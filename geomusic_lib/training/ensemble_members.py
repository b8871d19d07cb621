"""Each ensemble member's probabilities on every split of a run: on the validation rows (to fit
the ensemble) and on the test rows (to score it).

- A network: its early-stopped checkpoint of that split, checked to be trained on exactly this
  split, features and settings (else its validation rows may have been training rows), and
  run on the split's validation rows (on the run's frames for a frames model).
- A baseline: a second fit on the training rows only (its stored fit also saw the validation rows).
- Test rows: the member's stored predictions, in the order of the split's test rows.

In a bagged run (`train.bagging.folds` > 1) every member has out-of-fold probabilities for all of a
split's training rows (`oof.parquet`), and the ensemble is fitted on those rows instead: more rows,
and none of them seen by the member that scored it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from geomusic_lib.training.baselines import BASELINES, baseline_proba, fit_baseline
from geomusic_lib.data import RunData, Split, TrackTable
from geomusic_lib.data.frames import frames_for_tracks
from geomusic_lib.training.ensemble import MemberProbabilities
from geomusic_lib.models.checkpoint import check_fingerprint, load_checkpoint
from geomusic_lib.core.params import Params
from geomusic_lib.predict.predictor import Predictor
from geomusic_lib.predict.predictions import Predictions, read_predictions
from geomusic_lib.core.rundir import RunDir
from geomusic_lib.training.bagging import bag_rows
from geomusic_lib.training.trainer import run_fingerprint


def network_predictors(name: str, table: TrackTable, splits: Sequence[Split], params: Params,
                       run: RunDir) -> dict[int, Predictor]:
    """Each split's early-stopped `Predictor` of network `name`, checked against the run."""
    predictors = {}
    for split in splits:
        path = run.checkpoint(name, split.fold)
        checkpoint = load_checkpoint(path, map_location="cpu")
        expected = run_fingerprint(name, params.for_model(name), split, checkpoint.get("feature_names", []))
        check_fingerprint(checkpoint, expected, path, f"retrain {name} (its notebook) before fitting the ensemble")
        predictor = Predictor.from_dict(checkpoint, device="cpu", source=str(path))
        if predictor.classes != table.classes():
            raise ValueError(f"{path}: the checkpoint's classes differ from the run's; retrain {name}")
        predictors[split.fold] = predictor
    return predictors


def network_validation_proba(predictor: Predictor, table: TrackTable, split: Split,
                             frames: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """A network's probabilities on the split's validation rows (its frames for a frames model)."""
    if predictor.view == "frames":
        return predictor.predict_proba([frames[i] for i in split.val])
    return predictor.predict_proba(table.frame.iloc[split.val])


def baseline_validation_proba(name: str, table: TrackTable, split: Split, seed: int,
                              settings: Mapping[str, Any] | None = None) -> np.ndarray:
    """Baseline `name` (with its `settings`) refitted on the split's training rows only, on its validation rows."""
    y = table.label_indices()
    estimator = fit_baseline(name, seed + max(split.fold, 0), table.features[split.train], y[split.train], settings)
    return baseline_proba(estimator, table.features[split.val], len(table.classes()))


def stored_test_proba(name: str, pred: Predictions, table: TrackTable, split: Split,
                      rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of a member's stored predictions for `split` (its test rows, or `rows`), in that order."""
    if list(pred.classes) != table.classes():
        raise ValueError(f"{name}: its stored predictions have other classes than the run; rerun {name}")
    here = pred.fold == split.fold
    position = {tid: i for i, tid in enumerate(pred.track_ids[here])}
    wanted = table.frame["track_id"].iloc[split.test if rows is None else rows]
    missing = [t for t in wanted if t not in position]
    if missing:
        raise ValueError(f"{name}: {len(missing)} tracks of fold {split.fold} have no stored prediction "
                         f"(e.g. {missing[0]}); rerun {name}")
    return pred.proba[here][[position[t] for t in wanted]]


def oof_member_probabilities(run: RunDir, data: RunData, names: Sequence[str],
                             stored: Mapping[str, Predictions]) -> list[dict[str, MemberProbabilities]] | None:
    """For each split, every member's out-of-fold probabilities on the split's training rows
    (`bag_rows`) and its stored test probabilities; None unless every member is bagged (`oof.parquet`)."""
    if not names or not all(run.oof(m).is_file() for m in names):
        return None
    oof = {m: read_predictions(run.oof(m)) for m in names}
    return [{m: MemberProbabilities(stored_test_proba(m, oof[m], data.table, split, bag_rows(split)),
                                    stored_test_proba(m, stored[m], data.table, split)) for m in names}
            for split in data.splits]


def split_member_probabilities(run: RunDir, data: RunData, params: Params,
                               stored: Mapping[str, Predictions]) -> list[dict[str, MemberProbabilities]]:
    """For each split, every member's validation and test probabilities."""
    table, splits = data.table, data.splits
    predictors = {m: network_predictors(m, table, splits, params, run) for m in stored if m not in BASELINES}
    frames = None
    if any(p.view == "frames" for fold in predictors.values() for p in fold.values()):
        frames = frames_for_tracks(table.frame["track_id"], run.features_dir)
        if frames is None:
            raise FileNotFoundError(f"{run.features_dir}: no frames for the frames-view network(s); "
                                    "rerun the feature stage (02) of this run")
    out = []
    for split in splits:
        probas = {}
        for m, pred in stored.items():
            val = (network_validation_proba(predictors[m][split.fold], table, split, frames) if m in predictors
                   else baseline_validation_proba(m, table, split, params.seed, params.baseline_settings_for(m)))
            probas[m] = MemberProbabilities(val, stored_test_proba(m, pred, table, split))
        out.append(probas)
    return out
