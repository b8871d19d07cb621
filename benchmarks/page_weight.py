"""The weight of each page of a built book: its HTML, the local files it loads (scripts,
stylesheets, images), and what a first visit downloads. A file that several pages load is
fetched once and then served from the browser's cache, so it is listed once, in its own table.

    .venv/bin/python benchmarks/page_weight.py runs/smoke/book/_build/html
"""
from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

# <script src>, <link href> (stylesheets, preloads) and <img src>: what a browser fetches for the page.
ASSET = re.compile(r'<(?:script|img)\b[^>]*?\bsrc="([^"]+)"|<link\b[^>]*?\bhref="([^"]+)"[^>]*>')
SKIPPED_LINKS = re.compile(r'rel="(?:index|search|next|prev|canonical|icon|shortcut icon)"')


def page_assets(page: Path, html_dir: Path) -> set[Path]:
    """The local files the page loads (query strings dropped; links to other pages left out)."""
    text = page.read_text(encoding="utf-8", errors="replace")
    found = set()
    for match in ASSET.finditer(text):
        ref = match.group(1) or match.group(2)
        if match.group(2) and (SKIPPED_LINKS.search(match.group(0)) or ref.endswith(".html")):
            continue
        if re.match(r"^[a-z]+:", ref) or ref.startswith("#"):
            continue  # remote or data URLs, anchors
        path = (page.parent / ref.split("?")[0].split("#")[0]).resolve()
        if path.is_file() and html_dir.resolve() in path.parents:
            found.add(path)
    return found


def kib(n: int) -> str:
    return f"{n / 1024:,.0f}"


def weigh(html_dir: Path) -> tuple[list[list[str]], list[list[str]]]:
    """(one row per page, one row per file loaded by more than one page), sizes in KiB."""
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts)
    assets = {page: page_assets(page, html_dir) for page in pages}
    users: dict[Path, int] = defaultdict(int)
    for found in assets.values():
        for path in found:
            users[path] += 1
    rows = []
    for page in pages:
        html = page.stat().st_size
        own = sum(p.stat().st_size for p in assets[page] if users[p] == 1)
        shared = sum(p.stat().st_size for p in assets[page] if users[p] > 1)
        rows.append([page.relative_to(html_dir).as_posix(), kib(html), kib(own), kib(shared),
                     kib(html + own + shared)])
    common = sorted((p for p in users if users[p] > 1), key=lambda p: -p.stat().st_size)
    shared_rows = [[p.relative_to(html_dir.resolve()).as_posix(), kib(p.stat().st_size), f"{users[p]}/{len(pages)}"]
                   for p in common]
    return rows, shared_rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    return "\n".join(["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", type=Path, help="a built book, e.g. runs/smoke/book/_build/html")
    html_dir = parser.parse_args().html_dir
    if not (html_dir / "index.html").is_file():
        parser.error(f"{html_dir}: no index.html; build the book first (geomusic run --params ...)")
    rows, shared = weigh(html_dir)
    print(markdown(["page", "HTML KiB", "own files KiB", "shared files KiB", "first visit KiB"], rows))
    print("\nShared files (downloaded once, then cached by the browser):\n")
    print(markdown(["file", "KiB", "pages loading it"], shared))


if __name__ == "__main__":
    main()
