"""Data layer: loaders (UCI, MIRAGE, any table), labels, geography, splits and model-ready views."""
from geomusic_lib.data.io import DataError
from geomusic_lib.data.splits import Split, load_splits, make_splits, save_splits
from geomusic_lib.data.store import RunData, attach_features, load_dataset, load_run_data, prepare_run_data
from geomusic_lib.data.table import TrackTable, load_table
from geomusic_lib.data.uci import load_uci
from geomusic_lib.data.views import Normalizer, ViewBatch, make_view

__all__ = [
    "DataError", "Split", "load_splits", "make_splits", "save_splits", "RunData", "attach_features",
    "load_dataset", "load_run_data", "prepare_run_data", "TrackTable", "load_table", "load_uci",
    "Normalizer", "ViewBatch", "make_view",
]
