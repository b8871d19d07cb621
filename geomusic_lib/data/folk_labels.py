"""Origin labels and variant groups of the Essen tunes.

`O:` fields are German place lists such as `Europa, Mitteleuropa, Deutschland (BRD) , Hessen`,
`China, Shanxi Zuoquan`, `Lothringen` or `Mitteleuropa, Deutschland / Frankreich, Lothringen`.
`folk_origin_aliases.csv` maps the names to modern countries (kind `country`), to historical
states (`historical`) or to regions that lie in one modern country (`region`);
`china_provinces.csv` lists the Chinese provinces with their capitals' coordinates.
See `FOLK_SOURCE.md` for both tables.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from geomusic_lib.data.labels import normalise_text

#: Why a tune has no label, in words; `label_report` counts each (the loader adds `small_class`).
EXCLUSION_REASONS = {"no_origin": "no origin field", "no_country": "an origin naming no country",
                     "ambiguous": "alternatives naming different countries", "historical": "only a historical state",
                     "not_china": "not from China", "no_province": "no province named", "small_class": "a small class"}
EXCLUSIONS = tuple(reason for reason in EXCLUSION_REASONS if reason != "small_class")


def _key(text: str) -> str:
    """Matching key: lower case, no digits (pinyin tone numbers), accents or punctuation."""
    return normalise_text(re.sub(r"\d", "", text))


@lru_cache(maxsize=1)
def origin_aliases() -> pd.DataFrame:
    """The shipped alias table: `name, kind, country, note` (kind: country, historical or region)."""
    with (resources.files("geomusic_lib.data") / "folk_origin_aliases.csv").open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, keep_default_na=False)
    return table.assign(key=table["name"].map(_key))


@lru_cache(maxsize=1)
def china_provinces() -> pd.DataFrame:
    """The shipped province table: `province, aliases, capital, geonameid, lat, lon, region, kind`."""
    with (resources.files("geomusic_lib.data") / "china_provinces.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False)


@lru_cache(maxsize=1)
def _alias_index() -> dict[str, tuple[str, str]]:
    table = origin_aliases()
    return {k: (kind, country) for k, kind, country in zip(table["key"], table["kind"], table["country"])}


@lru_cache(maxsize=1)
def _province_index() -> dict[str, str]:
    index = {}
    for name, aliases in zip(china_provinces()["province"], china_provinces()["aliases"]):
        for spelling in [name, *filter(None, aliases.split(";"))]:
            index[_key(spelling)] = name
    return index


def _tokens(alternative: str) -> list[str]:
    return [t for t in (_key(part) for part in alternative.split(",")) if t]


def _hits(token: str) -> list[tuple[str, str]]:
    """Alias hits of one comma-separated token: the whole token, else each of its words."""
    index = _alias_index()
    if token in index:
        return [index[token]]
    return [index[w] for w in token.split() if w in index]


def _alternative_country(alternative: str) -> str | None:
    """Country of one alternative: 'ambiguous', 'historical', a country name, or None."""
    hits = [h for t in _tokens(alternative) for h in _hits(t)]
    countries = list(dict.fromkeys(c for kind, c in hits if kind == "country"))
    regions = list(dict.fromkeys(c for kind, c in hits if kind == "region"))
    if countries:
        return countries[0] if len(countries) == 1 else "ambiguous"
    if regions:
        return regions[0] if len(regions) == 1 else "ambiguous"
    return "historical" if any(kind == "historical" for kind, _ in hits) else None


def origin_country(origin: object) -> tuple[str | None, str | None]:
    """(country, None) or (None, reason) for an `O:` field; reasons are in `EXCLUSIONS`.

    A named country wins over a named region ("Italien, Tirol" is Italy); a region names the
    country only when none is named (Lothringen → France); historical states count only when
    a country or region follows them ("UdSSR, Ukraine"). Alternatives ("A / B", "A; B") that
    name different countries are ambiguous.
    """
    if not isinstance(origin, str) or not origin.strip():
        return None, "no_origin"
    text = re.sub(r"\([^)]*\)", " ", origin)
    results = [_alternative_country(alt) for alt in re.split(r"[;/]", text)]
    named = set(r for r in results if r is not None)
    if "ambiguous" in named or len(named) > 1:
        return None, "ambiguous"
    if not named:
        return None, "no_country"
    only = named.pop()
    return (None, "historical") if only == "historical" else (only, None)


def origin_province(origin: object) -> tuple[str | None, str | None]:
    """(province, None) for a Chinese origin such as `China, Shanxi Zuoquan`; else (None, reason)."""
    country, reason = origin_country(origin)
    if country != "China":
        return None, reason or "not_china"
    index = _province_index()
    tokens = _tokens(str(origin).split("China", 1)[1])
    for token in tokens:
        for candidate in [token, *token.split()]:
            if candidate in index:
                return index[candidate], None
    return None, "no_province"


def label_tunes(headers: pd.DataFrame, level: str) -> pd.DataFrame:
    """`headers` plus `country`, `province`, `label` and `excluded` (the reason, or '')."""
    country = headers["origin"].map(origin_country)
    province = headers["origin"].map(origin_province)
    out = headers.assign(country=[c for c, _ in country], province=[p for p, _ in province])
    reasons = country if level == "country" else province
    out["label"] = out["country"] if level == "country" else out["province"]
    out["excluded"] = [r or "" for _, r in reasons]
    return out


def label_coordinates(labels: pd.Series, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of each label: the country's capital, or the province's capital."""
    if level == "country":
        from geomusic_lib.data.geo import country_coordinates

        coords = {c: country_coordinates(c) for c in labels.dropna().unique()}
    else:
        table = china_provinces().set_index("province")
        coords = {p: (float(table.at[p, "lat"]), float(table.at[p, "lon"])) for p in labels.dropna().unique()}
    lat = labels.map(lambda v: coords.get(v, (np.nan, np.nan))[0]).astype(float).to_numpy()
    lon = labels.map(lambda v: coords.get(v, (np.nan, np.nan))[1]).astype(float).to_numpy()
    return lat, lon


# --------------------------------------------------------------------------- variant groups
def normalise_title(title: object) -> str:
    """Title key for variants: folded text, without bracketed additions or a trailing number."""
    text = re.sub(r"[\(\[][^)\]]*[\)\]]?", " ", str(title or ""))
    return re.sub(r"\s+\d+$", "", normalise_text(text))


def incipit_key(midi: np.ndarray, duration: np.ndarray, n_intervals: int) -> str:
    """Transposition- and tempo-free incipit: the first `n_intervals` pitch intervals between sounding
    notes and their durations relative to the first ('' when the tune is shorter or the incipit is
    one repeated note). With rhythm, common opening formulas no longer chain unrelated ballads."""
    midi, duration = np.asarray(midi, dtype=float), np.asarray(duration, dtype=float)
    sounding = np.isfinite(midi)
    pitches, durations = midi[sounding], duration[sounding]
    if n_intervals <= 0 or len(pitches) <= n_intervals:
        return ""
    steps = np.diff(pitches[: n_intervals + 1]).astype(int)
    rhythm = np.round(2 * np.log2(durations[: n_intervals + 1] / durations[0])).astype(int)
    return "" if not steps.any() else " ".join(map(str, steps)) + " | " + " ".join(map(str, rhythm))


def variant_groups(titles: pd.Series, incipits: pd.Series) -> np.ndarray:
    """Group ids: tunes that share a normalised title or an incipit are joined (transitively)."""
    n = len(titles)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for keys in (titles.to_numpy(), incipits.to_numpy()):
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if not key:
                continue
            j = first.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)
    roots = np.array([find(i) for i in range(n)])
    _, ids = np.unique(roots, return_inverse=True)
    return ids
