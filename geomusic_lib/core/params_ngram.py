"""`baseline_settings.ngram`: the n-gram event-model baseline's viewpoints, orders and classifier."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from geomusic_lib.core.params_models import Strict

#: per-note melodic viewpoints of the ngram baseline (geomusic_lib.data.viewpoints); `a*b` links two
NGRAM_VIEWPOINTS = ("interval", "contour", "degree", "duration", "duration_ratio", "metric")


class NgramSettings(Strict):
    """`baseline_settings.ngram`: TF-IDF of n-grams over melodic viewpoints, logistic regression. The defaults
    scored best on the validation rows of the 5-fold folk splits, both levels (benchmarks/bench_ngram.py)."""
    viewpoints: list[str] = Field(default_factory=lambda: ["interval", "interval*duration_ratio", "degree",
                                                           "degree*duration", "contour*metric", "degree*metric"],
                                  min_length=1)
    orders: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    C: float = Field(0.3, gt=0, description="inverse regularisation of the logistic regression")
    weighting: Literal["tfidf", "counts"] = "tfidf"
    min_df: int = Field(2, ge=1, description="n-grams in fewer training tunes are dropped")
    class_weight: Literal["balanced"] | None = None
    max_iter: int = Field(2000, ge=1)

    @field_validator("viewpoints")
    @classmethod
    def _known_viewpoints(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not v or any(p not in NGRAM_VIEWPOINTS for p in v.split("*"))]
        if bad:
            raise ValueError(f"unknown viewpoint(s) {bad}; choose from {', '.join(NGRAM_VIEWPOINTS)}, or link "
                             "two with *, e.g. interval*duration")
        return value

    @field_validator("orders")
    @classmethod
    def _orders(cls, value: list[int]) -> list[int]:
        if any(not 1 <= n <= 8 for n in value):
            raise ValueError(f"n-gram orders must lie in 1..8, e.g. [1, 2, 3, 4] (got {value})")
        return sorted(set(value))
