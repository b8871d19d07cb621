"""Every model family and view: forward/backward on real UCI rows, masking, attention, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from geomusic_lib.data import load_uci, make_view, Normalizer, pad_frames
from geomusic_lib.models import ATTENTION_TYPES, build_model, count_parameters, piecewise_bins

N_CLASSES = 33


@pytest.fixture(scope="module")
def uci_rows() -> tuple[np.ndarray, tuple[int, int]]:
    table = load_uci()
    x = table.features[:12]
    return Normalizer.fit(table.features).transform(x), table.grid_shape


@pytest.fixture(scope="module")
def real_frames(uci_rows) -> list[np.ndarray]:
    """Variable-length (T, 4) sequences cut from real grid rows: descriptors as steps."""
    x, (h, w) = uci_rows
    seqs = x.reshape(-1, h, w).transpose(0, 2, 1)
    return [seqs[i, : 10 + (i % 4) * 5] for i in range(len(seqs))]


def _cases(uci_rows, real_frames):
    x, grid = uci_rows
    vector, tokens = make_view("vector", x), make_view("tokens", x)
    image, steps = make_view("grid", x, grid), make_view("grid_sequence", x, grid)
    frames = pad_frames(real_frames)
    small = {"in_features": x.shape[1], "k": 4, "d_block": 16, "d_embedding": 4}
    cases = [("fcnn", {"in_features": x.shape[1]}, vector),
             ("tabm", {**small, "n_bins": 4, "bins": piecewise_bins(torch.as_tensor(x), 4)}, vector),
             ("tabm", {**small, "embedding": "periodic"}, vector), ("tabm", {**small, "embedding": "none"}, vector),
             ("cnn", {"in_channels": 1, "dims": 2}, image)]
    for view in (tokens, steps, frames):
        c = view.x.shape[2]
        cases += [("cnn", {"in_channels": c, "dims": 1}, view), ("rnn", {"in_channels": c}, view)]
        cases += [("attention", {"in_channels": c, "attention": a, "hidden": 16, "heads": 2}, view) for a in ATTENTION_TYPES]
    return cases


def test_forward_and_backward_of_every_model_and_view(uci_rows, real_frames):
    torch.manual_seed(0)
    for name, config, view in _cases(uci_rows, real_frames):
        model = build_model(name, {"n_classes": N_CLASSES, **config})
        logits = model(view.x, view.mask)
        assert logits.shape == (len(view), N_CLASSES), (name, config)
        assert torch.isfinite(logits).all()
        logits.logsumexp(1).mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), (name, config)
        assert model.embed(view.x, view.mask).shape[0] == len(view)
        assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 0


def test_attention_weights_sum_to_one_over_real_steps(real_frames):
    frames = pad_frames(real_frames)
    for kind in ATTENTION_TYPES:
        model = build_model("attention", {"in_channels": 4, "n_classes": N_CLASSES, "attention": kind,
                                          "hidden": 16, "heads": 2}).eval()
        logits, weights = model(frames.x, frames.mask, return_attention=True)
        assert weights.shape == frames.mask.shape
        torch.testing.assert_close(weights.sum(1), torch.ones(len(frames)))
        assert (weights[~frames.mask] == 0).all(), kind
        assert (weights[frames.mask] > 0).all(), kind


@pytest.mark.parametrize("name,config", [
    ("rnn", {"hidden": 16}),
    ("cnn", {"dims": 1, "channels": [8, 8, 8, 8]}),
    *[("attention", {"attention": a, "hidden": 16, "heads": 2}) for a in ATTENTION_TYPES],
])
def test_extra_padding_never_changes_the_output(real_frames, name, config):
    torch.manual_seed(0)
    model = build_model(name, {"in_channels": 4, "n_classes": N_CLASSES, **config}).eval()
    tight = pad_frames(real_frames)
    loose = pad_frames(real_frames, max_len=tight.x.shape[1] + 7)
    with torch.no_grad():
        torch.testing.assert_close(model(tight.x, tight.mask), model(loose.x, loose.mask), atol=1e-5, rtol=1e-4)


def test_unknown_model_or_attention_type_names_the_choices():
    with pytest.raises(ValueError, match="choose one of.*attention.*cnn.*fcnn.*rnn"):
        build_model("transformer", {})
    with pytest.raises(ValueError, match="unknown attention type 'cosine'.*self.*additive.*dot"):
        build_model("attention", {"in_channels": 4, "n_classes": 3, "attention": "cosine"})
    with pytest.raises(ValueError, match="unknown config key"):
        build_model("fcnn", {"in_features": 4, "n_classes": 3, "widths": [8]})


def test_wrong_input_dimension_is_a_clear_error(uci_rows):
    x, grid = uci_rows
    fcnn = build_model("fcnn", {"in_features": 68, "n_classes": N_CLASSES}).eval()
    with pytest.raises(ValueError, match=f"expects 68 features per track, got {x.shape[1]}"):
        fcnn(torch.as_tensor(x))
    rnn = build_model("rnn", {"in_channels": 3, "n_classes": N_CLASSES})
    with pytest.raises(ValueError, match=r"expects \(N, T, 3\)"):
        rnn(make_view("grid_sequence", x, grid).x)
    cnn = build_model("cnn", {"in_channels": 1, "n_classes": N_CLASSES, "dims": 2})
    with pytest.raises(ValueError, match="expects a 4-D input"):
        cnn(torch.as_tensor(x))
    tabm = build_model("tabm", {"in_features": 68, "n_classes": N_CLASSES, "k": 2, "d_block": 8, "embedding": "none"})
    with pytest.raises(ValueError, match=f"TabM expects 68 features per track, got {x.shape[1]}"):
        tabm(torch.as_tensor(x))
    with pytest.raises(ValueError, match=f"need bin edges for each of the {x.shape[1]} features, got 0"):
        build_model("tabm", {"in_features": x.shape[1], "n_classes": N_CLASSES})


def test_tabm_predicts_the_mean_of_its_members_probabilities(uci_rows):
    x = torch.as_tensor(uci_rows[0])
    tabm = build_model("tabm", {"in_features": x.shape[1], "n_classes": N_CLASSES, "k": 3, "d_block": 16,
                                "n_bins": 4, "d_embedding": 4, "bins": piecewise_bins(x, 4)}).eval()
    members = torch.softmax(tabm.member_logits(x), dim=-1)
    assert members.shape == (len(x), 3, N_CLASSES)
    assert torch.allclose(torch.softmax(tabm(x), dim=1), members.mean(dim=1), atol=1e-6)


def test_piecewise_bins_are_plain_sorted_lists_even_for_a_constant_feature():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    bins = piecewise_bins(x, 48)  # more bins than rows: capped at rows - 1
    assert bins[0] == [0.0, 1.0, 2.0, 3.0, 4.0] and bins[1] == [0.0, 2.0]
    assert all(isinstance(v, float) for edges in bins for v in edges)
