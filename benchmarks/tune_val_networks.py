"""Score network settings on the inner validation splits of the 10-fold UCI protocol (test folds unused).

    .venv/bin/python benchmarks/tune_val_networks.py fcnn '{}' '{"model": {"fcnn": {"hidden": [512, 256]}}}'

Each JSON argument is a params override on top of `--params` (default params/default.yaml);
`"chromatic": false` selects the 68 features. Prints, per setting, the mean over folds of the best
validation loss (the early-stopping criterion), the validation accuracy at that epoch, the mean
best epoch and the time. This is how the network settings in `params/default.yaml` were chosen.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch

from geomusic_lib.data import load_uci, make_splits
from geomusic_lib.core import history_path, load_params
from geomusic_lib.training import train_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["fcnn", "cnn", "rnn", "attention"])
    ap.add_argument("settings", nargs="+", help="JSON params overrides, one setting each")
    ap.add_argument("--params", default="params/default.yaml")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    for setting in args.settings:
        overrides = json.loads(setting)
        table = load_uci(chromatic=overrides.pop("chromatic", True))
        if "train" in overrides:  # `train_per_model` wins over `train`: put the setting's keys there too
            per_model = overrides.setdefault("train_per_model", {}).setdefault(args.model, {})
            per_model.update(overrides["train"])
        params = load_params(args.params, {"seed": args.seed, "device": "cpu",
                                           "split": {"strategy": "kfold", "folds": args.folds}, **overrides})
        splits = make_splits(table.frame, params.split, params.seed)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = train_model(args.model, table, splits, params, tmp, progress=False)
            accs = []
            for fold in result.folds:
                history = pd.read_csv(history_path(fold.checkpoint.parent))
                accs.append(history.loc[history.epoch == fold.best_epoch, "val_accuracy"].item())
        print(f"{args.model} {setting:80s} val_loss {np.mean([f.best_metric for f in result.folds]):.3f} "
              f"val_acc {np.mean(accs):.3f} best_epoch {np.mean([f.best_epoch for f in result.folds]):.0f} "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
