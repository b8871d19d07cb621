"""Why a model decides as it does: SHAP importance, attention per region, t-SNE of embeddings.

Every function reads a trained model (or fitted tree baseline) and data; none trains. The
inputs of the torch models are the view-shaped, normalised tensors that `Predictor.prepare`
returns; SHAP values are summed back to one value per feature name whatever the view.
Sample sizes are arguments (defaults in `InterpretParams`) so the default run stays fast.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from geomusic_lib.data.splits import Split
from geomusic_lib.data.uci_features import family_of
from geomusic_lib.data.views import make_view
from geomusic_lib.core.extras import require
from geomusic_lib.predict.predictor import Predictor
from geomusic_lib.core.rundir import RunDir

SPLIT_PARTS = ("train", "val", "test")


# --------------------------------------------------------------------------- helpers
def sample_rows(n_total: int, n: int, seed: int) -> np.ndarray:
    """At most `n` sorted row positions out of `n_total`, seeded."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def sample_split(split: Split, n: int, seed: int, part: str = "test") -> np.ndarray:
    """At most `n` row positions (of the track table) from one part of a split, seeded: the
    tracks SHAP explains, its background, or the tracks a tree explainer reads."""
    if part not in SPLIT_PARTS:
        raise ValueError(f"part {part!r}: choose one of {SPLIT_PARTS}")
    rows = getattr(split, part)
    return rows[sample_rows(len(rows), n, seed)]


def view_feature_index(view: str, n_features: int, grid_shape: Sequence[int] | None = None) -> np.ndarray:
    """Which feature sits at each position of one view-shaped sample (shape: the sample's shape).

    Built by passing the feature positions themselves through `make_view`, so it follows
    the data layer's layout exactly (for `grid_sequence` the grid is transposed).
    """
    if view == "frames":
        raise ValueError("view 'frames' has no per-feature layout; explain a model trained on a tabular view")
    ids = np.arange(n_features, dtype=np.float32)[None, :]
    return make_view(view, ids, grid_shape=grid_shape).x[0].numpy().round().astype(int)


def step_names(view: str, feature_names: Sequence[str], grid_shape: Sequence[int] | None = None) -> list[str] | None:
    """A name per sequence step: the feature for `tokens`; the name part shared by a step's
    features for `grid_sequence` (e.g. `timbre01` for `s1_timbre01 … s4_timbre01`); None for
    `frames`, whose steps are time positions ("step t")."""
    if view == "frames":
        return None
    index = view_feature_index(view, len(feature_names), grid_shape)
    if index.ndim == 1:  # vector: no steps
        return list(feature_names)
    names = []
    for t, row in enumerate(index.reshape(index.shape[0], -1)):
        parts = [set(str(feature_names[i]).split("_")) for i in row]
        shared = [p for p in str(feature_names[row[0]]).split("_") if all(p in s for s in parts)]
        names.append("_".join(shared) if shared else f"step {t}")
    return names


def _to_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _no_cudnn(device: torch.device):
    # cuDNN cannot run the LSTM backward in eval mode; SHAP needs gradients of eval-mode models
    return torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else contextlib.nullcontext()


class _Probabilities(nn.Module):
    """Softmax output, so SHAP values are in units of class probability."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def _sum_to_features(values: np.ndarray, index: np.ndarray, n_features: int) -> np.ndarray:
    """(N, *sample_shape, K) → (N, F, K) by summing the positions of each feature."""
    n, k = values.shape[0], values.shape[-1]
    flat = values.reshape(n, -1, k)
    onehot = np.zeros((flat.shape[1], n_features))
    onehot[np.arange(flat.shape[1]), index.ravel()] = 1.0
    return np.einsum("npk,pf->nfk", flat, onehot)


# --------------------------------------------------------------------------- SHAP
def expected_gradients(
    model: nn.Module,
    background: torch.Tensor,
    explain: torch.Tensor,
    nsamples: int = 50,
    seed: int = 42,
    max_rows: int = 4096,
) -> np.ndarray:
    """SHAP values `(N, *sample_shape, K)` of the softmax output by expected gradients.

    The estimator of `shap.GradientExplainer`: for each explained track, `nsamples` draws of a
    background row r and t ~ U(0, 1), the gradient at r + t (x - r) times (x - r), averaged.
    Here all draws of a chunk of tracks go through the model at once, with one backward
    pass per class, instead of one per track and class (about 50× faster on CPU).
    """
    device = _device_of(model)
    gen = torch.Generator().manual_seed(seed)
    n, per = len(explain), max(1, max_rows // nsamples)
    wrapped = _Probabilities(model).eval()
    chunks = []
    with _no_cudnn(device):
        for start in range(0, n, per):
            x = explain[start:start + per].to(device)
            m = len(x)
            pick = torch.randint(len(background), (m * nsamples,), generator=gen)
            t = torch.rand(m * nsamples, generator=gen).to(device).view(-1, *([1] * (x.dim() - 1)))
            ref = background[pick].to(device)
            delta = x.repeat_interleave(nsamples, dim=0) - ref
            points = (ref + t * delta).requires_grad_(True)
            out = wrapped(points)
            k = out.shape[1]
            phi = torch.empty((m, *x.shape[1:], k), dtype=torch.float32)
            for j in range(k):
                (grad,) = torch.autograd.grad(out[:, j].sum(), points, retain_graph=j < k - 1)
                phi[..., j] = (grad * delta).view(m, nsamples, *x.shape[1:]).mean(dim=1).float().cpu()
            chunks.append(phi.numpy())
    return np.concatenate(chunks)


def shap_values_torch(
    model: nn.Module,
    x_background,
    x_explain,
    feature_names: Sequence[str],
    view: str = "vector",
    grid_shape: Sequence[int] | None = None,
    nsamples: int = 50,
    seed: int = 42,
    method: str = "expected_gradients",
) -> np.ndarray:
    """SHAP values `(N, F, K)` of a torch model's class probabilities, one value per feature name.

    `x_background` and `x_explain` are view-shaped, normalised inputs (`Predictor.prepare`).
    `method="expected_gradients"` (default) is the vectorised estimator of
    `shap.GradientExplainer`; `method="gradient_explainer"` runs shap's own explainer (slow:
    one backward pass per track and class).
    """
    model.eval()
    device = _device_of(model)
    background = _to_tensor(x_background).float()
    explain = _to_tensor(x_explain).float()
    index = view_feature_index(view, len(feature_names), grid_shape)
    if tuple(explain.shape[1:]) != index.shape or tuple(background.shape[1:]) != index.shape:
        raise ValueError(f"inputs have per-track shape {tuple(explain.shape[1:])} (background "
                         f"{tuple(background.shape[1:])}) but view {view!r} of {len(feature_names)} features "
                         f"has shape {index.shape}")
    if method == "expected_gradients":
        values = expected_gradients(model, background, explain, nsamples, seed)
    elif method == "gradient_explainer":
        shap = require("shap", "interpret")

        with _no_cudnn(device):
            explainer = shap.GradientExplainer(_Probabilities(model).eval(), background.to(device),
                                             batch_size=min(nsamples, 1024))
            values = explainer.shap_values(explain.to(device), nsamples=nsamples, rseed=seed)
        if isinstance(values, list):  # older shap: one array per class
            values = np.stack(values, axis=-1)
        values = np.asarray(values)
        if values.ndim == explain.dim():  # a single output
            values = values[..., None]
    else:
        raise ValueError(f"method must be 'expected_gradients' or 'gradient_explainer', got {method!r}")
    return _sum_to_features(values, index, len(feature_names))


def shap_values_tree(estimator, x, feature_names: Sequence[str]) -> np.ndarray:
    """SHAP values `(N, F, K)` of a fitted tree ensemble (TreeExplainer); a Pipeline's
    preprocessing steps are applied first and the final estimator is explained."""
    shap = require("shap", "interpret")

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError(f"x must be (tracks, {len(feature_names)} features), got {x.shape}")
    if hasattr(estimator, "steps"):  # sklearn Pipeline
        x = estimator[:-1].transform(x) if len(estimator.steps) > 1 else x
        estimator = estimator.steps[-1][1]
    values = shap.TreeExplainer(estimator).shap_values(x, check_additivity=False)
    if isinstance(values, list):
        values = np.stack(values, axis=-1)
    values = np.asarray(values)
    return values[..., None] if values.ndim == 2 else values


def global_importance(values: np.ndarray, feature_names: Sequence[str]) -> pd.DataFrame:
    """Mean |SHAP| per feature over tracks and classes, most important first."""
    importance = np.abs(values).mean(axis=(0, 2))
    frame = pd.DataFrame({"feature": list(feature_names), "importance": importance})
    return frame.sort_values("importance", ascending=False, kind="mergesort").reset_index(drop=True)


def shap_importance_tree(estimator, x, feature_names: Sequence[str]) -> pd.DataFrame:
    """Global feature importance (mean |SHAP|, one row per feature) of a tree baseline."""
    return global_importance(shap_values_tree(estimator, x, feature_names), feature_names)


def importance_by_family(importance: pd.DataFrame, level: str = "family",
                         families: pd.Series | None = None) -> pd.DataFrame:
    """Importance summed over each descriptor family of the UCI features (`level="group"`: timbral
    vs tonal), with its share of the total, its column count and the mean per column, largest first.

    `importance` is `global_importance`'s frame (`feature`, `importance`); a column's 12 identical
    chroma copies add up to the credit a single column would get. `families` (indexed by feature)
    replaces the UCI dictionary for other sources.
    """
    groups = family_of(importance["feature"], level) if families is None else families
    missing = sorted(set(importance["feature"]) - set(groups.index))
    if missing:
        raise ValueError(f"no family for feature(s) {missing[:5]}: give `families` a value for every feature")
    frame = importance.assign(**{level: importance["feature"].map(groups)})
    table = frame.groupby(level, sort=False)["importance"].agg(importance="sum", n_features="size").reset_index()
    table["share"] = table["importance"] / table["importance"].sum()
    table["per_feature"] = table["importance"] / table["n_features"]
    return table.sort_values("importance", ascending=False, kind="mergesort").reset_index(drop=True)


def distinctive_classes(per_class: pd.DataFrame, top_n: int = 4, min_support: int = 1) -> list[str]:
    """The `top_n` classes with the highest recall (ties: more test tracks first)."""
    frame = per_class[per_class["support"] >= min_support]
    frame = frame.sort_values(["recall", "support"], ascending=False, kind="mergesort")
    return frame["class"].astype(str).head(top_n).tolist()


def per_class_importance(
    values: np.ndarray,
    feature_names: Sequence[str],
    classes: Sequence[str],
    per_class: pd.DataFrame,
    top_n: int = 4,
) -> pd.DataFrame:
    """Mean |SHAP| of each feature for the output of each of the `top_n` most distinctive
    classes (highest recall in `per_class`, from `evaluate.per_class_metrics`): feature × class."""
    chosen = distinctive_classes(per_class, top_n)
    position = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in chosen if c not in position]
    if unknown:
        raise ValueError(f"classes {unknown} are not outputs of the model ({len(classes)} classes)")
    table = {c: np.abs(values[:, :, position[c]]).mean(axis=0) for c in chosen}
    return pd.DataFrame(table, index=pd.Index(list(feature_names), name="feature"))


# --------------------------------------------------------------------------- attention
def _in_batches(model: nn.Module, x, mask, batch_size: int, step) -> np.ndarray:
    """`step(x_batch, mask_batch)` of an eval-mode model over batches on its device, joined on the CPU."""
    model.eval()
    device = _device_of(model)
    x = _to_tensor(x)
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            mb = None if mask is None else torch.as_tensor(mask[start:start + batch_size]).to(device)
            out.append(step(x[start:start + batch_size].to(device), mb).float().cpu())
    return torch.cat(out).numpy()


def attention_weights(model: nn.Module, x, mask=None, batch_size: int = 256) -> np.ndarray:
    """Attention weights `(N, T)` from `model(x, mask, return_attention=True)`; multi-head or
    query × key weights are averaged to the attention each step receives."""
    def step(xb: torch.Tensor, mb: torch.Tensor | None) -> torch.Tensor:
        result = model(xb, mb, return_attention=True)
        if not isinstance(result, tuple):
            raise TypeError(f"{type(model).__name__} does not return attention weights")
        weights = result[1].float()
        while weights.dim() > 2:  # (N, heads, T_query, T_key) or (N, T_query, T_key)
            weights = weights.mean(dim=1)
        return weights

    return _in_batches(model, x, mask, batch_size, step)


def attention_by_region(
    model: nn.Module,
    x,
    mask,
    regions: Sequence[str],
    step_labels: Sequence[str] | None = None,
    batch_size: int = 256,
) -> pd.DataFrame:
    """Mean attention weight per step, for the tracks of each (true) region: region × step."""
    weights = attention_weights(model, x, mask, batch_size)
    if len(regions) != len(weights):
        raise ValueError(f"got {len(regions)} regions for {len(weights)} tracks")
    columns = list(step_labels) if step_labels is not None else [f"step {t}" for t in range(weights.shape[1])]
    if len(columns) != weights.shape[1]:
        raise ValueError(f"got {len(columns)} step labels for {weights.shape[1]} steps")
    frame = pd.DataFrame(weights, columns=columns)
    frame["region"] = np.asarray(regions, dtype=str)
    table = frame.groupby("region", sort=True).mean()
    table.columns.name = "step"
    return table


def attention_model(run: RunDir, fold: int = -1, device: str = "auto") -> Predictor | None:
    """The run's attention network for one split, from its best checkpoint; None when the run
    trained none (`attention` is not in `models:`)."""
    path = run.checkpoint("attention", fold)
    return Predictor.from_checkpoint(path, device=device) if path.is_file() else None


def track_attention_by_region(predictor: Predictor, rows: pd.DataFrame, regions: Sequence[str],
                              features_dir: str | Path) -> pd.DataFrame:
    """`attention_by_region` for rows of a run's track table, read as the predictor was trained
    (feature columns, or frame sequences from `features_dir`), with a name per step."""
    batch = predictor.prepare(predictor.track_inputs(rows, features_dir))
    steps = step_names(predictor.view, predictor.feature_names, predictor.grid_shape)
    return attention_by_region(predictor.model, batch.x, batch.mask, regions, steps)


# --------------------------------------------------------------------------- embeddings
def embeddings(model: nn.Module, x, mask=None, batch_size: int = 512) -> np.ndarray:
    """Penultimate-layer representation `(N, D)` from `model.embed`."""
    return _in_batches(model, x, mask, batch_size, model.embed)


def tsne_embeddings(
    model: nn.Module,
    x,
    countries: Sequence[str],
    regions: Sequence[str],
    mask=None,
    n: int = 600,
    seed: int = 42,
    perplexity: float = 30.0,
) -> pd.DataFrame:
    """2-D t-SNE of the embeddings of at most `n` tracks: columns `x, y, country, region`."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    total = len(x)
    if len(countries) != total or len(regions) != total:
        raise ValueError(f"got {len(countries)} countries and {len(regions)} regions for {total} tracks")
    rows = sample_rows(total, n, seed)
    if len(rows) < 5:
        raise ValueError(f"t-SNE needs at least 5 tracks, got {len(rows)}")
    x_rows = _to_tensor(x)[torch.as_tensor(rows)]
    m_rows = None if mask is None else torch.as_tensor(mask)[torch.as_tensor(rows)]
    emb = embeddings(model, x_rows, m_rows)
    perplexity = min(perplexity, (len(rows) - 1) / 3)
    with threadpool_limits(1):  # its OpenMP threads spin on a busy machine: 100 points took 68 s on 2 shared cores, 1 s on one
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(emb)
    return pd.DataFrame({
        "x": xy[:, 0], "y": xy[:, 1],
        "country": np.asarray(countries, dtype=object)[rows], "region": np.asarray(regions, dtype=object)[rows],
        "row": rows,
    })


__all__ = [
    "sample_rows", "sample_split", "view_feature_index", "step_names", "expected_gradients", "shap_values_torch",
    "shap_values_tree", "global_importance", "shap_importance_tree", "distinctive_classes", "per_class_importance",
    "attention_weights", "attention_by_region", "attention_model", "track_attention_by_region", "embeddings",
    "tsne_embeddings",
]
