"""The UCI feature dictionary: what each column `s<k>_timbre<NN>` / `s<k>_chroma…` measures.

The dataset ships numbers without names. The mapping below rests on the UCI page ("default
MARSYAS settings in single vector format (68 features)", chroma "12 per octave") and on MARSYAS'
`bextract` (Tzanetakis & Cook 2000): per 512-sample window it computes zero crossings, spectral
centroid, roll-off, flux and 13 MFCCs (17 descriptors); a texture window of 40 windows gives
their mean and standard deviation; the whole track then gives the mean and standard deviation
of those, so 4 statistics x 17 = 68. `confidence` and `note` say how sure each part is; the
book's features page (`book/features.md`) gives the evidence and sources.

`python -m geomusic_lib.data.uci_features` rewrites the shipped CSV from this module (a test keeps
the two equal).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Iterable

import pandas as pd

from geomusic_lib.data.io import DataError
from geomusic_lib.data.uci import CHROMA, N_STATISTICS, TIMBRAL

DICTIONARY_FILE = "feature_dictionary.csv"
COLUMNS = ["column", "statistic", "statistic_meaning", "descriptor", "family", "group", "meaning",
           "duplicate_of", "confidence", "note"]
#: bextract's four track-level statistics, in file order (MARSYAS names: Mean_Acc…_Mean_Mem40, …).
STATISTICS = [
    ("mean of texture means", "the descriptor's typical level over the track"),
    ("mean of texture standard deviations", "how much it moves within ~1 s windows, on average (short-term variation)"),
    ("standard deviation of texture means", "how much its ~1 s level changes across the track (long-term variation)"),
    ("standard deviation of texture standard deviations", "how uneven its short-term variation is across the track"),
]
STATISTIC_NOTE = ("order from bextract's network (texture mean, std; then track mean, std); the data agree that "
                  "statistic 1 is a level (MFCCs symmetric, reaching -5 to -7 sd) and 2-4 are spreads (right-skewed, "
                  "bounded below), but cannot tell statistic 2 from 3")
MFCC_MEANING = {0: "overall log energy of the mel spectrum (loudness level)",
                1: "spectral tilt: low against high frequencies (dark or bright)"}
#: family -> coarse group, for the question "timbral or tonal?"
GROUPS = {"zero crossings": "timbral", "spectral shape": "timbral", "MFCC": "timbral", "chroma": "tonal"}


#: (descriptor, family, meaning, confidence, note) of timbral descriptors 1-4, in bextract's order
#: (TimbreFeatures: the time-domain branch, then Centroid, Rolloff, Flux, MFCC).
SPECTRAL = [
    ("zero-crossing rate", "zero crossings", "how often the waveform changes sign: high for noisy, percussive or "
     "bright sounds", "high", "first in bextract's order; correlates 0.91 with column 2 (centroid), as usual"),
    ("spectral centroid", "spectral shape", "centre of mass of the power spectrum: brightness", "high",
     "correlates -0.62 with MFCC 1 (spectral tilt), as expected"),
    ("spectral roll-off", "spectral shape", "frequency below which 90 % of the power lies (MARSYAS default): "
     "bandwidth", "medium", "correlates only 0.32 with the centroid here, less than is usual for audio"),
    ("spectral flux", "spectral shape", "change of the normalised spectrum from one window to the next: how fast "
     "the sound changes", "medium", "position from bextract's order only"),
]


def _descriptor(d: int) -> tuple[str, str, str, str, str]:
    """(descriptor, family, meaning, confidence, note) of timbral descriptor `d` (1-17)."""
    if d <= len(SPECTRAL):
        return SPECTRAL[d - 1]
    k = d - 5
    meaning = MFCC_MEANING.get(k, f"mel-cepstral coefficient {k}: finer detail of the spectral envelope "
                                  "(timbre, formant-like shape)")
    return f"MFCC {k}", "MFCC", meaning, "high", "13 MFCCs (0-12) follow the four spectral descriptors in bextract"


def _row(column: str, stat: int, descriptor: str, family: str, meaning: str, duplicate_of: str = "",
         confidence: str = "high", note: str = "") -> dict[str, str]:
    name, stat_meaning = STATISTICS[stat - 1]
    return {"column": column, "statistic": f"{stat}: {name}", "statistic_meaning": stat_meaning,
            "descriptor": descriptor, "family": family, "group": GROUPS[family], "meaning": meaning,
            "duplicate_of": duplicate_of, "confidence": confidence, "note": note}


def _chroma_rows(stat: int) -> list[dict[str, str]]:
    first = f"s{stat}_chroma01"
    meaning = ("chroma (energy per pitch class, 12 per octave, Western tuning); in this file all 12 columns "
               "of a statistic hold the same value")
    note = ("why the 12 are equal, and which pitch class (or summary of the 12) the value stands for, is not "
            "documented; MARSYAS' chroma (Spectrum2Chroma) outputs 12 separate bins")
    rows = [_row(f"s{stat}_chroma", stat, "chroma (one value)", "chroma",
                 "the one distinct chroma value of this statistic (the 12 identical copies collapsed)",
                 confidence="low", note=note)]
    for d in range(1, CHROMA + 1):
        rows.append(_row(f"s{stat}_chroma{d:02d}", stat, f"chroma bin {d}", "chroma", meaning,
                         duplicate_of="" if d == 1 else first, confidence="low", note=note))
    return rows


def feature_dictionary() -> pd.DataFrame:
    """Every UCI column name the loader can produce (68, 116 or 72 features) with its family,
    statistic, plain meaning, duplicate and confidence: the table shipped as `feature_dictionary.csv`."""
    rows = []
    for stat in range(1, N_STATISTICS + 1):
        for d in range(1, TIMBRAL + 1):
            descriptor, family, meaning, confidence, note = _descriptor(d)
            if stat in (2, 3):  # the statistic itself is less certain than the descriptor
                confidence, note = "medium", f"{note}; {STATISTIC_NOTE}"
            rows.append(_row(f"s{stat}_timbre{d:02d}", stat, descriptor, family, meaning, confidence=confidence,
                             note=note))
        rows += _chroma_rows(stat)
    return pd.DataFrame(rows, columns=COLUMNS)


def shipped_dictionary() -> pd.DataFrame:
    """The dictionary as shipped in `data/uci_geo_music/feature_dictionary.csv` (the book reads it)."""
    path = resources.files("geomusic_lib.data") / "uci_geo_music" / DICTIONARY_FILE
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def family_of(columns: Iterable[str], level: str = "family") -> pd.Series:
    """The descriptor family (`level="family"`: zero crossings, spectral shape, MFCC, chroma) or
    group (`"group"`: timbral, tonal) of each UCI column, indexed by column name."""
    if level not in ("family", "group"):
        raise ValueError(f"level {level!r}: choose 'family' or 'group'")
    columns = [str(c) for c in columns]
    table = feature_dictionary().set_index("column")
    unknown = [c for c in columns if c not in table.index]
    if unknown:
        raise DataError(f"{len(unknown)} column(s) are not UCI features ({', '.join(unknown[:5])}"
                        f"{' ...' if len(unknown) > 5 else ''}): the feature dictionary covers data.source: uci only.")
    return pd.Series(table.loc[columns, level].to_numpy(), index=pd.Index(columns, name="feature"), name=level)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "uci_geo_music" / DICTIONARY_FILE
    feature_dictionary().to_csv(target, index=False, lineterminator="\n")
    print(f"wrote {target}")
