"""`train.bagging`: k-fold bagging inside each split, and the `auto` rule that chooses k from the table's size."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from geomusic_lib.core.params_models import Strict, auto_or_at_least_one

#: `folds: auto` bags tables of at most this many tracks (UCI 1,059, the Chinese provinces 1,170,
#: spotify_country 1,698): their validation split alone is a few hundred rows or fewer.
AUTO_BAG_MAX_TRACKS = 5000
#: the k of `folds: auto` on such a table (benchmarks/results: bagging gains 2-5 points on UCI and the provinces)
AUTO_BAG_FOLDS = 5


class BaggingParams(Strict):
    folds: int | Literal["auto"] = Field(
        "auto", description=f"k-fold bagging inside each split: every model trains k times, each member early-"
        f"stopping on its held-out fold; 1 = one model per split; auto = {AUTO_BAG_FOLDS} for a table of at most "
        f"{AUTO_BAG_MAX_TRACKS:,} tracks, else 1")
    jobs: int | Literal["auto"] = Field(1, description="bag members trained at once, each in its own process; "
                                        "auto = one per free CPU core, or per visible GPU")

    @field_validator("folds")
    @classmethod
    def _whole_folds(cls, value: int | str) -> int | str:
        return auto_or_at_least_one(value, "folds", "folds: 5 (1 = no bagging)")

    def folds_for(self, n_tracks: int) -> int:
        """The k in force for a table of `n_tracks` tracks (`auto` resolved)."""
        if self.folds != "auto":
            return int(self.folds)
        return AUTO_BAG_FOLDS if n_tracks <= AUTO_BAG_MAX_TRACKS else 1
