"""Data: loaders (UCI, MIRAGE, any table, the Essen melodies), labels, geography, splits, model-ready views
and frames, and the packaged data files (the UCI release, country tables, the world map)."""
from geomusic_lib.data.io import DataError
from geomusic_lib.data.table import distinct_column_count, identical_column_groups, load_table, TrackTable
from geomusic_lib.data.uci import collapse_chroma_copies, LABEL_NOTE, load_uci, N_STATISTICS
from geomusic_lib.data.uci_features import family_of, feature_dictionary, shipped_dictionary
from geomusic_lib.data.mirage import canonical_names, load_mirage_tracks, read_mirage_events, track_keys
from geomusic_lib.data.mirage_read import default_cache_dir
from geomusic_lib.data.folk import (
    cache_path, clean_beat_strength, essen_dir, essen_files, EVENT_COLUMNS, FolkError, load_folk_tracks,
    parse_abc_events, repair_dos_letters, tonic_pitch_class
)
from geomusic_lib.data.folk_labels import china_provinces, normalise_title, origin_country, origin_province
from geomusic_lib.data.geo import country_table, geo_soft_targets, great_circle_km, lookup_country, region_of
from geomusic_lib.data.splits import bag_splits, load_splits, make_splits, save_splits, Split, split_gaps, split_groups
from geomusic_lib.data.store import (
    attach_features, build_class_table, load_dataset, load_run_data, prepare_run_data, read_meta, run_splits, RunData
)
from geomusic_lib.data.duplicates import duplicate_counts, shared_between
from geomusic_lib.data.views import check_finite, make_view, Normalizer, pad_frames, ViewBatch
from geomusic_lib.data.viewpoints import TuneView, typical_tune_view
from geomusic_lib.data.frames import frame_channels, FRAMES_DIR, frames_for_tracks, load_frames, write_frames

__all__ = [
    "DataError", "distinct_column_count", "identical_column_groups", "load_table", "TrackTable", "collapse_chroma_copies", "LABEL_NOTE", "load_uci", "N_STATISTICS",
    "family_of", "feature_dictionary", "shipped_dictionary", "canonical_names", "load_mirage_tracks",
    "read_mirage_events", "track_keys", "default_cache_dir", "cache_path", "clean_beat_strength", "essen_dir",
    "essen_files", "EVENT_COLUMNS", "FolkError", "load_folk_tracks", "parse_abc_events", "repair_dos_letters",
    "tonic_pitch_class", "china_provinces", "normalise_title", "origin_country", "origin_province", "country_table",
    "geo_soft_targets", "great_circle_km", "lookup_country", "region_of", "bag_splits", "load_splits", "make_splits", "save_splits",
    "Split", "split_gaps", "split_groups", "attach_features", "build_class_table", "load_dataset", "load_run_data",
    "prepare_run_data", "read_meta", "run_splits", "RunData", "duplicate_counts", "shared_between", "check_finite", "make_view", "Normalizer", "pad_frames", "ViewBatch",
    "frame_channels", "FRAMES_DIR", "frames_for_tracks", "load_frames", "write_frames", "TuneView", "typical_tune_view"
]
