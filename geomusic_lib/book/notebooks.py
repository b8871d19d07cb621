"""The book's notebooks, in order: the one list the orchestrator, the book's table of
contents (`_toc.yml`, checked by a test) and notebook 00 read.

Three stages: stage 2 (the models) only reads the outputs of stage 1 and writes its own
`runs/<name>/models/<model>/`, so its notebooks can run in parallel (`--jobs`).
"""
from __future__ import annotations

STAGES: tuple[tuple[str, ...], ...] = (
    ("00_overview", "01_data_prep", "02_feature_extraction"),
    ("03_fcnn", "04_cnn", "05_rnn", "06_attention"),
    ("07_evaluation", "08_interpretability", "09_predict"),
)
NOTEBOOKS: tuple[str, ...] = tuple(name for stage in STAGES for name in stage)
#: The networks each model notebook trains (a notebook is skipped when none of them is in `models:`).
NOTEBOOK_MODELS: dict[str, tuple[str, ...]] = {"03_fcnn": ("fcnn", "tabm"), "04_cnn": ("cnn",), "05_rnn": ("rnn",),
                                               "06_attention": ("attention",)}
#: The network each model notebook is named after (its `model_name` parameter).
MODEL_NOTEBOOKS: dict[str, str] = {name: name.split("_", 1)[1] for name in STAGES[1]}


def notebook_runs(notebook: str, models: list[str]) -> bool:
    """Whether notebook `notebook` has work for a run that trains `models` (every non-model notebook does)."""
    return notebook not in NOTEBOOK_MODELS or any(m in models for m in NOTEBOOK_MODELS[notebook])


def stage_of(notebook: str) -> int:
    """0, 1 or 2: the stage a notebook belongs to."""
    return next(i for i, stage in enumerate(STAGES) if notebook in stage)


def earlier_notebooks(notebook: str) -> list[str]:
    """The notebooks whose outputs `notebook` reads: every notebook of the stages before its own
    (model notebooks do not need each other; 07-09 need only what exists)."""
    return [n for stage in STAGES[:stage_of(notebook)] for n in stage]
