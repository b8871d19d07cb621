"""The FCNN's RealMLP-TD options: robust scaling with smooth clipping, numerical embeddings, front
scale, activations; statistics from the training rows only, kept in a self-contained checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from geomusic_lib.core.params import FcnnParams, params_from_dict
from geomusic_lib.data import Normalizer, load_uci
from geomusic_lib.models import build_model, load_checkpoint, model_from_checkpoint, save_checkpoint
from geomusic_lib.models.fcnn import fcnn_statistics, robust_statistics, smooth_clip
from geomusic_lib.training.setup import model_config

N_CLASSES = 33
OPTIONS = [{}, {"robust_clip": True}, {"embedding": "pbld"}, {"embedding": "piecewise", "n_bins": 4},
           {"embedding": "pbld", "d_embedding": 2, "robust_clip": True}, {"front_scale": True},
           {"batch_norm": False}, {"parametric": True}, {"activation": "prelu"},
           *({"activation": a, "parametric": p} for a in ("selu", "silu", "mish", "gelu") for p in (False, True)),
           FcnnParams().model_dump()]


@pytest.fixture(scope="module")
def rows() -> torch.Tensor:
    table = load_uci()
    return torch.as_tensor(Normalizer.fit(table.features).transform(table.features[:40]))


def _config(x: torch.Tensor, **hp) -> dict:
    hp = {"hidden": [16, 8], **hp}
    return {"in_features": x.shape[1], "n_classes": N_CLASSES, **hp, **fcnn_statistics(x, hp)}


@pytest.mark.parametrize("hp", OPTIONS, ids=lambda hp: ",".join(f"{k}={v}" for k, v in hp.items()) or "plain")
def test_every_option_gives_logits_and_finite_gradients(rows, hp):
    torch.manual_seed(0)
    model = build_model("fcnn", _config(rows, **hp))
    logits = model(rows)
    assert logits.shape == (len(rows), N_CLASSES) and torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.embed(rows).shape == (len(rows), model.config.hidden[-1])


def test_smooth_clip_is_bounded_odd_monotone_and_near_identity_at_zero():
    x = torch.linspace(-1e6, 1e6, 20001).double()
    y = smooth_clip(x)
    assert (y.abs() < 3).all() and (y.diff() > 0).all() and torch.isfinite(smooth_clip(torch.tensor([3e38]))).all()
    torch.testing.assert_close(smooth_clip(-x), -y)
    small = torch.tensor([-0.1, 0.0, 0.1]).double()
    torch.testing.assert_close(smooth_clip(small), small, atol=2e-3, rtol=0)


def test_robust_statistics_are_median_and_inverse_iqr_with_fallbacks():
    x = np.array([[0.0, 5.0, 1.0], [1.0, 5.0, 1.0], [2.0, 5.0, 1.0], [3.0, 5.0, 1.0], [4.0, 5.0, 9.0]])
    center, scale = robust_statistics(x)
    assert center == [2.0, 5.0, 1.0]
    assert scale[0] == pytest.approx(1 / 2.0)  # IQR 3 - 1
    assert scale[1] == 0.0  # constant: the feature becomes 0
    assert scale[2] == pytest.approx(1 / 4.0)  # IQR 0: half the range (9 - 1) / 2


def test_clipped_inputs_stay_bounded_even_for_extreme_rows(rows):
    model = build_model("fcnn", _config(rows, robust_clip=True)).eval()
    seen = []
    model.body.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        model(rows * 1e30)  # (x/3)^2 would overflow float32: hypot does not
    assert torch.isfinite(seen[0]).all() and seen[0].abs().max() <= 3 and seen[0].abs().min() > 2.9


def test_model_config_takes_the_statistics_from_the_training_rows_only(rows):
    params = params_from_dict({"model": {"fcnn": {"robust_clip": True, "embedding": "piecewise", "n_bins": 4}}})
    config = model_config("fcnn", params, rows[:20], N_CLASSES)
    center, scale = robust_statistics(rows[:20].numpy().astype(np.float64))
    assert config["center"] == center and config["scale"] == scale and len(config["bins"]) == rows.shape[1]
    assert config != model_config("fcnn", params, rows[20:], N_CLASSES)
    assert all(isinstance(v, float) for edges in config["bins"] for v in edges)


def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path, rows):
    config = model_config("fcnn", params_from_dict({}), rows, N_CLASSES)  # the default FCNN
    torch.manual_seed(0)
    model = build_model("fcnn", config)
    model.train()
    model(rows).sum().backward()  # BatchNorm's running statistics move off their start
    model.eval()
    path = save_checkpoint({"format_version": 2, "model_name": "fcnn", "model_config": config,
                            "state_dict": model.state_dict(), "classes": [], "feature_names": [], "view": "vector"},
                           tmp_path / "fcnn.pt")
    assert torch.load(path, weights_only=True)["model_config"] == config
    rebuilt = model_from_checkpoint(load_checkpoint(path))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(rows), model(rows))


def test_missing_statistics_or_bad_choices_are_clear_errors(rows):
    base = {"in_features": rows.shape[1], "n_classes": N_CLASSES}
    with pytest.raises(ValueError, match="robust_clip needs a centre and scale for each of the 72 features"):
        build_model("fcnn", {**base, "robust_clip": True})
    with pytest.raises(ValueError, match="need bin edges for each of the 72 features, got 0"):
        build_model("fcnn", {**base, "embedding": "piecewise"})
    with pytest.raises(ValueError, match="activation: 'tanh'; choose one of"):
        build_model("fcnn", {**base, "activation": "tanh"})
    with pytest.raises(ValueError, match="embedding: 'plr'; choose one of"):
        build_model("fcnn", {**base, "embedding": "plr"})
    with pytest.raises(ValueError, match="PBLD needs at least 2"):
        build_model("fcnn", {**base, "embedding": "pbld", "d_embedding": 1})
