"""Evaluation: metrics with bootstrap intervals, a run's scores, and interpretation (SHAP, attention,
integrated gradients)."""
from geomusic_lib.evaluation.metrics import (
    align_classes, error_km, evaluate_predictions, expected_calibration_error, geographic_order, HEADLINE,
    LOWER_IS_BETTER, ordered_confusion, per_class_metrics, predicted_classes, reliability_table, top_k_hits
)
from geomusic_lib.evaluation.evaluate import (
    best_network, evaluate_run, load_history, load_metrics, model_kind, prediction_files
)
from geomusic_lib.evaluation.interpret import distinctive_classes, shap_values_tree
from geomusic_lib.evaluation.interpret_sequence import melody_showcase

__all__ = [
    "align_classes", "error_km", "evaluate_predictions", "expected_calibration_error", "geographic_order", "HEADLINE",
    "LOWER_IS_BETTER", "ordered_confusion", "per_class_metrics", "predicted_classes", "reliability_table", "top_k_hits",
    "best_network", "evaluate_run", "load_history", "load_metrics", "model_kind", "prediction_files",
    "distinctive_classes", "shap_values_tree", "melody_showcase"
]
