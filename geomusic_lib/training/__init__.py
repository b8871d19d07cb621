"""Training: the network trainer, tuning with Optuna, the sklearn baselines and the ensemble."""
from geomusic_lib.training.trainer import model_view, train_model
from geomusic_lib.training.tune import trials_table, TUNABLE_BASELINES, tune_model, tuned_params, tuning_summary
from geomusic_lib.training.baselines import baseline_proba, fit_baseline, make_baseline, run_baselines, SVM_MAX_ROWS
from geomusic_lib.training.ensemble import (
    apply_temperature, combine, ensemble_over_splits, ensemble_summary, fit_ensemble, fit_temperature, fit_weights,
    FittedEnsemble, log_loss, MemberProbabilities, weights_table
)
from geomusic_lib.training.ensemble_members import member_probabilities

__all__ = [
    "model_view", "train_model", "trials_table", "TUNABLE_BASELINES", "tune_model", "tuned_params", "tuning_summary",
    "baseline_proba", "fit_baseline", "make_baseline", "run_baselines", "SVM_MAX_ROWS", "apply_temperature", "combine",
    "ensemble_over_splits", "ensemble_summary", "fit_ensemble", "fit_temperature", "fit_weights", "FittedEnsemble",
    "log_loss", "MemberProbabilities", "weights_table", "member_probabilities"
]
