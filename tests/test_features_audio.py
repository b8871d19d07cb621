"""The audio source: synthetic tones → librosa frames (T×C float32) and track statistics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("librosa")
sf = pytest.importorskip("soundfile")

from geomusic_lib.features import extract_features, frame_channels, load_frames  # noqa: E402
from geomusic_lib.core import AudioParams, FeatureParams  # noqa: E402

SR = 22050


def write_tone(path, hz: float, seconds: float = 1.0) -> None:
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, 0.5 * np.sin(2 * np.pi * hz * t).astype(np.float32), SR)


@pytest.fixture()
def audio_dir(tmp_path):
    write_tone(tmp_path / "a.wav", 220.0)  # A3
    write_tone(tmp_path / "c.wav", 523.25)  # C5
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    pd.DataFrame({"track_id": ["ta", "tc", "tb", "tx"],
                  "path": ["a.wav", "c.wav", "broken.wav", "absent.wav"]}).to_csv(tmp_path / "audio.csv", index=False)
    return tmp_path


def audio_params(audio_dir, **extra) -> FeatureParams:
    return FeatureParams(source="audio", audio=AudioParams(manifest=audio_dir / "audio.csv", **extra))


def test_frames_and_statistics_from_tones(audio_dir, tmp_path):
    tracks = pd.DataFrame({"track_id": ["ta", "tc", "tb", "tx", "unlisted"]})
    result = extract_features(tracks, audio_params(audio_dir), tmp_path / "out")
    frames = load_frames(tmp_path / "out")
    channels = frame_channels(tmp_path / "out")
    assert set(frames) == {"ta", "tc"} and len(channels) == 20 + 12 + 6
    for array in frames.values():
        assert array.dtype == np.float32 and array.shape == (1 + SR // 512, len(channels))
    f = result.features
    assert f.shape == (2, 2 * len(channels))
    chroma_a = [f.loc["ta", f"chroma_{i}_mean"] for i in range(12)]
    chroma_c = [f.loc["tc", f"chroma_{i}_mean"] for i in range(12)]
    assert int(np.argmax(chroma_a)) == 9 and int(np.argmax(chroma_c)) == 0  # pitch classes A and C
    assert f.loc["tc", "spectral_centroid_mean"] > f.loc["ta", "spectral_centroid_mean"]
    assert result.coverage["fetched"] == 2 and result.coverage["missing"] == 3


def test_rerun_uses_cache_and_max_frames(audio_dir, tmp_path):
    tracks = pd.DataFrame({"track_id": ["ta", "tc"]})
    params = audio_params(audio_dir, max_frames=10)
    first = extract_features(tracks, params, tmp_path / "out")
    second = extract_features(tracks, params, tmp_path / "out")
    assert second.coverage["cached"] == 2 and second.coverage["fetched"] == 0
    pd.testing.assert_frame_equal(first.features, second.features)
    assert all(a.shape[0] == 10 for a in load_frames(tmp_path / "out").values())


def test_missing_manifest_is_a_clear_error(tmp_path):
    from geomusic_lib.features import FeatureError

    params = FeatureParams(source="audio", audio=AudioParams(manifest=tmp_path / "nope.csv"))
    with pytest.raises(FeatureError, match="audio manifest not found"):
        extract_features(pd.DataFrame({"track_id": ["a"]}), params, tmp_path / "out")
