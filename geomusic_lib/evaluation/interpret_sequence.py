"""Which notes a sequence model relies on: attention weights and integrated gradients per note, the
tunes to show (correct, confident, chosen on validation rows) and their notes for plotting.

SHAP's kernel and gradient explainers assume a fixed-width input; a melody has a variable number of
notes under a mask. Integrated gradients (Sundararajan et al. 2017) work on any differentiable model
with the mask held fixed: the attribution of a note is the path integral of the gradient from a
baseline melody (every channel at its training mean, i.e. 0 after normalisation) to the melody,
summed over the note's channels. Attributions add up to p(x) − p(baseline) for the explained class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from geomusic_lib.evaluation.interpret import attention_weights

if TYPE_CHECKING:
    from geomusic_lib.data.store import RunData
    from geomusic_lib.data.splits import Split
    from geomusic_lib.core.rundir import RunDir

__all__ = ["integrated_gradients", "note_attributions", "note_weights", "showcase_rows", "melody_notes",
           "MelodyShowcase", "melody_showcase"]


def integrated_gradients(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None, target: Sequence[int],
                         steps: int = 32, baseline: torch.Tensor | None = None) -> np.ndarray:
    """Attributions `(N, T, C)` of the softmax probability of class `target[i]` for each row of `x`
    `(N, T, C)` (normalised model input), by a `steps`-point Riemann (midpoint) integral; zero at padding."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(x, dtype=torch.float32).to(device)
    base = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline, dtype=torch.float32).to(device)
    m = None if mask is None else torch.as_tensor(mask).to(device)
    target_t = torch.as_tensor(np.asarray(target), dtype=torch.long, device=device)
    total = torch.zeros_like(x)
    backends = torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else torch.enable_grad()
    with backends, torch.enable_grad():  # cuDNN RNNs have no backward in eval mode
        for alpha in (np.arange(steps) + 0.5) / steps:
            point = (base + float(alpha) * (x - base)).requires_grad_(True)
            proba = torch.softmax(model(point, m).float(), dim=1)
            chosen = proba.gather(1, target_t[:, None]).sum()
            (grad,) = torch.autograd.grad(chosen, point)
            total += grad
    attributions = (x - base) * total / steps
    if m is not None:
        attributions = attributions * m.unsqueeze(-1).to(attributions.dtype)
    return attributions.detach().cpu().numpy()


def note_attributions(model: nn.Module, x, mask, target: Sequence[int], steps: int = 32) -> np.ndarray:
    """Integrated gradients summed over each note's channels: `(N, T)`, signed, zero at padding."""
    return integrated_gradients(model, x, mask, target, steps).sum(axis=2)


def note_weights(model: nn.Module, x, mask, target: Sequence[int], method: str = "attention",
                 steps: int = 32) -> np.ndarray:
    """Per-note weights `(N, T)`: the attention model's weights (`method="attention"`), or the
    integrated-gradient attributions of any sequence model (`"integrated_gradients"`)."""
    if method == "attention":
        return attention_weights(model, x, mask)
    if method == "integrated_gradients":
        return note_attributions(model, x, mask, target, steps)
    raise ValueError(f"method must be 'attention' or 'integrated_gradients', got {method!r}")


def showcase_rows(proba: np.ndarray, y_true: np.ndarray, classes: Sequence[str], rows: Sequence[int],
                  n_classes: int = 4, per_class: int = 1) -> pd.DataFrame:
    """The most confident correctly classified rows of up to `n_classes` classes (largest first).

    Pass validation rows (`rows`, their `proba` and `y_true`), so that choosing what to show
    never looks at the test rows. Returns `row, class, probability`.
    """
    proba, y_true, rows = np.asarray(proba), np.asarray(y_true), np.asarray(rows)
    right = proba.argmax(1) == y_true
    picked = []
    for k in pd.Series(y_true).value_counts().index:
        hits = np.flatnonzero(right & (y_true == k))
        best = hits[np.argsort(-proba[hits, k], kind="stable")][:per_class]
        picked += [{"row": int(rows[i]), "class": classes[k], "probability": float(proba[i, k])} for i in best]
        if len({p["class"] for p in picked}) >= n_classes:
            break
    return pd.DataFrame(picked, columns=["row", "class", "probability"])


def melody_notes(track: pd.Series, max_notes: int | None = None) -> pd.DataFrame:
    """The note events of one tune from its `notes_*` arrays (a row of the run's `data/tracks.parquet`):
    `step, onset, duration, midi, is_rest`, in the order of its frames (one step per note or rest)."""
    missing = [c for c in ("notes_onset", "notes_duration", "notes_midi") if c not in track.index]
    if missing:
        raise KeyError(f"track {track.get('track_id')!r}: no {missing}; read the run's data/tracks.parquet "
                       "(a symbolic source such as data.source: folk), not table.parquet")
    midi = np.asarray(track["notes_midi"], dtype=float)
    notes = pd.DataFrame({"step": np.arange(len(midi)), "onset": np.asarray(track["notes_onset"], dtype=float),
                          "duration": np.asarray(track["notes_duration"], dtype=float), "midi": midi,
                          "is_rest": ~np.isfinite(midi)})
    return notes.iloc[:max_notes] if max_notes else notes


@dataclass
class MelodyShowcase:
    """Tunes to draw with a sequence model's weight on each note (`plots.melody_weight_figure`)."""

    model: str
    method: str  # "attention" or "integrated_gradients"
    melodies: list[pd.DataFrame]
    weights: list[np.ndarray]
    titles: list[str]
    track_ids: list[str]


def melody_showcase(run: "RunDir", data: "RunData", split: "Split", model: str, method: str,
                    device: str = "auto", n_classes: int = 4, steps: int = 32,
                    excerpt_notes: int = 48) -> MelodyShowcase | None:
    """The most confident correct validation tunes of `n_classes` classes for `model`, with its
    per-note weights (`method`: "attention" or "integrated_gradients"); None when the run has no note
    arrays (not a symbolic source), did not train `model` on frames, asks for integrated gradients of a
    model that embeds viewpoint tokens (`inputs` other than floats), or got no validation tune right. Each melody is cut to its first
    `excerpt_notes` steps: a short excerpt, never a whole tune (the Essen terms)."""
    from geomusic_lib.predict.predictor import Predictor

    path = run.checkpoint(model, split.fold)
    if not run.tracks.is_file() or not path.is_file():
        return None
    tracks = pd.read_parquet(run.tracks).set_index("track_id")
    predictor = Predictor.from_checkpoint(path, device=device)
    if predictor.view != "frames" or "notes_midi" not in tracks.columns:
        return None
    if method == "integrated_gradients" and getattr(getattr(predictor.model, "steps", None), "inputs", "floats") != "floats":
        return None  # token codes are embedded through an integer lookup: no gradient reaches them
    rows = data.table.frame.iloc[split.val]
    batch = predictor.prepare(predictor.track_inputs(rows, run.features_dir))
    proba = predictor.predict_proba(batch)
    index = {c: k for k, c in enumerate(predictor.classes)}
    y_true = rows["label"].map(index).to_numpy()
    chosen = showcase_rows(proba, y_true, predictor.classes, np.arange(len(rows)), n_classes)
    if chosen.empty:  # no validation tune classified correctly: nothing to show
        return None
    picked = chosen["row"].to_numpy(dtype=np.int64, copy=True)
    shown = batch.index(torch.from_numpy(picked))
    weights = note_weights(predictor.model, shown.x, shown.mask, y_true[picked], method, steps)
    ids = rows["track_id"].iloc[picked]
    melodies = [melody_notes(tracks.loc[i], max_notes=min(len(w), excerpt_notes)) for i, w in zip(ids, weights)]
    titles = [f"{c}: {tracks.loc[i, 'title'] if 'title' in tracks.columns else i} (p = {p:.2f})"
              for i, c, p in zip(ids, chosen["class"], chosen["probability"])]
    return MelodyShowcase(model, method, melodies, [np.asarray(w)[:excerpt_notes] for w in weights], titles,
                          list(ids))
