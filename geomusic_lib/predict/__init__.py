"""Prediction from a checkpoint alone: `Predictor`, input matching, batch inference, the predictions format
and distance-aware decisions."""
from geomusic_lib.predict.predictor import Predictor
from geomusic_lib.predict.inputs import PredictionError
from geomusic_lib.predict.inference import batch_probabilities, resolve_device
from geomusic_lib.predict.predictions import FoldPredictions, Predictions, read_predictions, write_predictions
from geomusic_lib.predict.decision import class_distance_matrix, distance_aware_predict, expected_distance_km

__all__ = [
    "Predictor", "PredictionError", "batch_probabilities", "resolve_device", "FoldPredictions", "Predictions",
    "read_predictions", "write_predictions", "class_distance_matrix", "distance_aware_predict", "expected_distance_km"
]
