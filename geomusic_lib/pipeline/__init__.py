"""The pipeline: what a notebook opens (`open_stage`), the stages it calls, the papermill orchestrator and
the `geomusic` command."""
from geomusic_lib.pipeline.session import known_errors, open_stage, settings_table, show_settings
from geomusic_lib.pipeline.stages import (
    effective_params, extract_features, fit_baselines, fit_ensemble, prepare_data, run_ensemble, train_network,
    tune_models
)

__all__ = [
    "known_errors", "open_stage", "settings_table", "show_settings", "effective_params", "extract_features",
    "fit_baselines", "fit_ensemble", "prepare_data", "run_ensemble", "train_network", "tune_models"
]
