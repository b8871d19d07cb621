"""Matching a track's artist and title to search results: forgiving about case, accents,
punctuation, "(feat. …)" and " - Remastered" tails (`normalise_title`), then string similarity."""
from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any


def normalise_title(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form; drops '(feat. …)' and ' - Remastered …' tails."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii").casefold()
    text = re.sub(r"[\(\[].*?[\)\]]", " ", text)
    text = re.sub(r"\s-\s.*$", " ", text)
    text = re.sub(r"\b(feat|ft|featuring)\b.*$", " ", text)
    text = re.sub(r"^the\s+", "", re.sub(r"[^a-z0-9]+", " ", text).strip())
    return " ".join(text.split())


def similarity(a: str, b: str) -> float:
    """Normalised similarity in [0, 1] between two names."""
    left, right = normalise_title(a), normalise_title(b)
    if not left or not right:
        return 0.0
    return difflib.SequenceMatcher(None, left, right).ratio()


def best_match(artist: str, title: str, items: list[dict[str, Any]]) -> tuple[str | None, float]:
    """The candidate with the highest mean(title, artist) similarity, and that score."""
    best_id, best_score = None, 0.0
    for item in items or []:
        if not item or not item.get("id"):
            continue
        artist_score = max((similarity(artist, a.get("name", "")) for a in item.get("artists") or []), default=0.0)
        score = (similarity(title, item.get("name", "")) + artist_score) / 2
        if score > best_score:
            best_id, best_score = item["id"], score
    return best_id, round(best_score, 4)


def search_query(artist: str, title: str) -> str:
    clean = lambda s: str(s).replace('"', " ").strip()  # noqa: E731
    return f'track:"{clean(title)}" artist:"{clean(artist)}"'
