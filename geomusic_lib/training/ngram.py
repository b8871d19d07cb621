"""The `ngram` baseline: an event model of melodies, after Hillewaere, Manderick & Conklin (ISMIR 2009,
"Global feature versus event models for folk song classification"), who found n-grams over melodic
events beat global features at telling folk songs' regions apart.

Each tune is its viewpoint sequences (`geomusic_lib.data.viewpoints`); the classifier counts their
n-grams (sklearn's TF-IDF or count vectoriser) and fits a logistic regression on the sparse counts.
Its input is an object array of per-tune viewpoint dicts (`melody_inputs`), not the feature matrix.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from geomusic_lib.core.params import NgramSettings
from geomusic_lib.core.rundir import RunDir
from geomusic_lib.data import TrackTable
from geomusic_lib.data.viewpoints import MELODY_COLUMNS, melody_viewpoints, ngrams

_DEFAULT = NgramSettings()
NO_MELODIES = "baselines: ngram needs melodies (data.source: folk); remove it from baselines"


class NgramAnalyzer:
    """A vectoriser's analyzer: the n-gram tokens of one tune's viewpoint dict (picklable)."""

    def __init__(self, viewpoints: Sequence[str], orders: Sequence[int]) -> None:
        self.viewpoints, self.orders = list(viewpoints), list(orders)

    def __call__(self, tune: dict[str, list[str]]) -> list[str]:
        return ngrams(tune, self.viewpoints, self.orders)


class NgramClassifier(ClassifierMixin, BaseEstimator):
    """TF-IDF (or raw counts) of viewpoint n-grams → multinomial logistic regression.
    The parameters are `baseline_settings.ngram`'s (`NgramSettings`)."""

    def __init__(self, viewpoints: Sequence[str] = tuple(_DEFAULT.viewpoints),
                 orders: Sequence[int] = tuple(_DEFAULT.orders), C: float = _DEFAULT.C,
                 weighting: str = _DEFAULT.weighting, min_df: int = _DEFAULT.min_df,
                 class_weight: str | None = None, max_iter: int = _DEFAULT.max_iter) -> None:
        self.viewpoints, self.orders, self.C, self.weighting = viewpoints, orders, C, weighting
        self.min_df, self.class_weight, self.max_iter = min_df, class_weight, max_iter

    def fit(self, x: np.ndarray, y: np.ndarray) -> "NgramClassifier":
        NgramSettings(viewpoints=list(self.viewpoints), orders=list(self.orders), C=self.C,
                      weighting=self.weighting, min_df=self.min_df, class_weight=self.class_weight)
        vectoriser = TfidfVectorizer if self.weighting == "tfidf" else CountVectorizer
        self.pipeline_ = make_pipeline(
            vectoriser(analyzer=NgramAnalyzer(self.viewpoints, self.orders), lowercase=False,
                       min_df=min(self.min_df, len(x))),
            LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter))
        self.pipeline_.fit(list(x), y)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict_proba(list(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(1)]


def run_melodies(run: RunDir) -> pd.DataFrame | None:
    """`track_id` and the note arrays of a run's tracks (`data/tracks.parquet`), or None when it has none
    (the table that notebook 07 loads holds only features)."""
    if not run.tracks.is_file():
        return None
    import pyarrow.parquet as pq

    if not {"track_id", *MELODY_COLUMNS} <= set(pq.read_schema(run.tracks).names):
        return None
    return pd.read_parquet(run.tracks, columns=["track_id", *MELODY_COLUMNS])


def melody_inputs(table: TrackTable, melodies: pd.DataFrame | None = None) -> np.ndarray:
    """The `ngram` baseline's input: one viewpoint dict per table row (an object array, row order), from
    the table's note arrays, else from `melodies` (`track_id` + note arrays, e.g. `run_melodies`)."""
    source = table.frame if all(c in table.frame.columns for c in MELODY_COLUMNS) else melodies
    if source is None or not all(c in source.columns for c in MELODY_COLUMNS):
        raise ValueError(NO_MELODIES)
    if source is not table.frame:
        source = table.frame[["track_id"]].merge(source[["track_id", *MELODY_COLUMNS]], on="track_id", how="left")
        lost = source["notes_midi"].isna()
        if lost.any():
            raise ValueError(f"baselines: ngram: {int(lost.sum())} track(s) have no melody, e.g. "
                             f"{source.loc[lost, 'track_id'].iloc[0]!r}; rerun 01_data_prep (or remove ngram)")
    out = np.empty(len(source), dtype=object)
    out[:] = melody_viewpoints(source)
    return out
