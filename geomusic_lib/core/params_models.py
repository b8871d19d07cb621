"""The `model:` section of a params file: each network's architecture (see `core.params`)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NetworkName = Literal["fcnn", "tabm", "cnn", "rnn", "attention"]
View = Literal["auto", "grid", "tokens", "frames"]
#: The `view` key of the CNN, RNN and attention networks.
VIEW = Field("auto", description="auto = grid where the source has a grid shape (UCI), else tokens")
Inputs = Literal["floats", "viewpoints", "both"]
#: What a sequence network reads per step of note frames (models/_tokens.py).
INPUTS = Field("floats", description="floats: the frames' float channels; viewpoints: an embedding of each "
                                     "viewpoint token (interval, degree, duration, ...; data/note_tokens.py); both")
D_TOKEN = Field(8, ge=1, description="embedding width of each viewpoint token")


class Strict(BaseModel):
    """A params section: unknown keys and bad values are errors, also on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def auto_or_at_least_one(value: int | str, what: str, example: str) -> int | str:
    """A field's `auto` or a whole number ≥ 1, else a one-line error naming `what` and an `example`."""
    if value != "auto" and value < 1:
        raise ValueError(f"must be auto or a whole number of {what} ≥ 1, e.g. {example}")
    return value


class FcnnParams(Strict):
    """The FCNN, with RealMLP-TD's options (models/fcnn.py); benchmarks/bench_fcnn_ingredients.py chose them."""

    hidden: list[int] = Field(default_factory=lambda: [512, 256])
    dropout: float = Field(0.5, ge=0, lt=1)
    robust_clip: bool = Field(True, description="median / IQR scaling of the training rows, then smooth clipping")
    embedding: Literal["none", "pbld", "piecewise"] = "piecewise"
    n_bins: int = Field(16, ge=2)
    d_embedding: int = Field(4, ge=2)
    front_scale: bool = False
    batch_norm: bool = True
    parametric: bool = False
    activation: Literal["relu", "selu", "silu", "mish", "gelu", "prelu"] = "relu"


class CnnParams(Strict):
    channels: list[int] = Field(default_factory=lambda: [64, 128, 256])
    kernel_size: int = Field(3, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    view: View = VIEW
    inputs: Inputs = INPUTS
    d_token: int = D_TOKEN


class RnnParams(Strict):
    hidden: int = Field(64, ge=1)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    view: View = VIEW
    inputs: Inputs = INPUTS
    d_token: int = D_TOKEN


class AttentionParams(Strict):
    hidden: int = Field(64, ge=1)
    layers: int = Field(1, ge=1)
    attention: Literal["self", "additive", "dot"] = "additive"
    heads: int = Field(4, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    view: View = VIEW
    inputs: Inputs = INPUTS
    d_token: int = D_TOKEN


class TabmParams(Strict):
    k: int = Field(16, ge=1, description="ensemble members (weight-sharing MLPs)")
    n_blocks: int = Field(2, ge=1)
    d_block: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    embedding: Literal["piecewise", "periodic", "none"] = "piecewise"
    n_bins: int = Field(32, ge=2, description="quantile bins per feature (piecewise embeddings)")
    d_embedding: int = Field(8, ge=1)


class ModelParams(Strict):
    fcnn: FcnnParams = Field(default_factory=FcnnParams)
    tabm: TabmParams = Field(default_factory=TabmParams)
    cnn: CnnParams = Field(default_factory=CnnParams)
    rnn: RnnParams = Field(default_factory=RnnParams)
    attention: AttentionParams = Field(default_factory=AttentionParams)
