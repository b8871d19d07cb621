"""Run plumbing every other job uses: params, the run directory, atomic writes, manifest, run lock,
progress, optional extras, threads and random state."""
from geomusic_lib.core.params import (
    AudioParams, deep_merge, EvaluateParams, FeatureParams, FolkParams, load_params, MirageParams,
    Params, params_from_dict, ParamsError, project_root_for, SplitParams, SpotifyParams, TuneParams, with_overrides
)
from geomusic_lib.core.params_text import format_params
from geomusic_lib.core.rundir import (
    checkpoint_path, ensemble_path, fold_dir, HISTORY_FILE, history_path, predictions_path, read_run_csv, RunDir
)
from geomusic_lib.core.fileio import (
    atomic_path, atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_parquet, atomic_write_text,
    atomic_write_with
)
from geomusic_lib.core.manifest import accelerator, git_state, read_manifest, update_manifest, write_manifest
from geomusic_lib.core.runlock import ENV_VAR, LOCK_FILE, read_lock_info, RunLock, RunLockError
from geomusic_lib.core.progress import progress_bar, PROGRESS_ENV, PROGRESS_FILE_ENV
from geomusic_lib.core.extras import MissingExtraError, require
from geomusic_lib.core.threads import choose_threads, free_cores, macs_per_row, SMALL_MODEL_MACS, torch_threads
from geomusic_lib.core.rngstate import capture_rng_state, restore_rng_state

__all__ = [
    "AudioParams", "deep_merge", "EvaluateParams", "FeatureParams", "FolkParams", "format_params", "load_params",
    "MirageParams", "Params", "params_from_dict", "ParamsError", "project_root_for", "SplitParams", "SpotifyParams",
    "TuneParams", "with_overrides", "checkpoint_path", "ensemble_path", "fold_dir", "HISTORY_FILE", "history_path",
    "predictions_path", "read_run_csv", "RunDir", "atomic_path", "atomic_write_bytes", "atomic_write_csv",
    "atomic_write_json", "atomic_write_parquet", "atomic_write_text", "atomic_write_with", "accelerator", "git_state",
    "read_manifest", "update_manifest", "write_manifest", "ENV_VAR", "LOCK_FILE", "read_lock_info", "RunLock",
    "RunLockError", "progress_bar", "PROGRESS_ENV", "PROGRESS_FILE_ENV", "MissingExtraError", "require",
    "choose_threads", "free_cores", "macs_per_row", "SMALL_MODEL_MACS", "torch_threads", "capture_rng_state",
    "restore_rng_state"
]
