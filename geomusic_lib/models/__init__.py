"""Model families as pure `nn.Module`s, rebuilt by name from a plain config dict (see `build_model`)."""
from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from geomusic_lib.models.bag import Bag
from geomusic_lib.models.attention import ATTENTION_TYPES, AttentionConfig, AttentionLstm
from geomusic_lib.models.cnn import Cnn, CnnConfig
from geomusic_lib.models.fcnn import Fcnn, FcnnConfig
from geomusic_lib.models.rnn import BiLstm, RnnConfig
from geomusic_lib.models.tabm import Tabm, TabmConfig, piecewise_bins

MODELS: dict[str, type[nn.Module]] = {"fcnn": Fcnn, "cnn": Cnn, "rnn": BiLstm, "attention": AttentionLstm,
                                   "tabm": Tabm}

__all__ = ["MODELS", "Bag", "ATTENTION_TYPES", "build_model", "count_parameters", "Fcnn", "FcnnConfig", "Cnn", "CnnConfig",
           "BiLstm", "RnnConfig", "AttentionLstm", "AttentionConfig", "Tabm", "TabmConfig",
           "CheckpointError", "FORMAT_VERSION", "check_fingerprint", "fingerprint", "load_checkpoint",
           "model_from_checkpoint", "save_checkpoint", "piecewise_bins"]


def build_model(name: str, config: dict[str, Any]) -> nn.Module:
    """Build model `name` from a plain dict (e.g. a checkpoint's `model_config`)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if "bag" in config:  # k-fold bagging: one config per member
        return Bag([build_model(name, member) for member in config["bag"]])
    cls = MODELS[name]
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = set(config) - fields
    if unknown:
        raise ValueError(f"model {name!r}: unknown config key(s) {sorted(unknown)}; valid keys are {sorted(fields)}")
    try:
        return cls(cls.Config(**config))
    except TypeError as err:
        raise ValueError(f"model {name!r}: incomplete config {config}: {err}") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """The plain-dict config that `build_model` accepts."""
    return dataclasses.asdict(model.config)


# last: checkpoint.py builds models through `build_model` above
from geomusic_lib.models.checkpoint import (  # noqa: E402
    FORMAT_VERSION, CheckpointError, check_fingerprint, fingerprint, load_checkpoint, model_from_checkpoint,
    save_checkpoint,
)
