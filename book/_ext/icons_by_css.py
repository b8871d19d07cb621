"""Sphinx extension: the theme's icons drawn by its CSS web fonts, without `fontawesome.js`.

pydata-sphinx-theme puts a 1.4 MB `fontawesome.js` on every page, which redraws each `<i class="fa-…">`
as an SVG. Its own stylesheet already holds Font Awesome's `@font-face` rules and icon classes, so
the icons render without the script, and a browser fetches a font file (about 150 KB for the solid
set) only on a page that shows one of its glyphs. This extension removes the script from the pages
and the file from the build once the HTML is written.
"""
from __future__ import annotations

import re
from pathlib import Path

SCRIPT = re.compile(r'[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\n?')


def strip_fontawesome_js(html: str) -> str:
    """`html` without the theme's `fontawesome.js` script tag."""
    return SCRIPT.sub("", html)


def _strip_pages(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if "fontawesome.js" in text:
            page.write_text(strip_fontawesome_js(text), encoding="utf-8")
    for leftover in (out / "_static" / "scripts").glob("fontawesome.js*"):
        leftover.unlink()


def setup(app):
    app.connect("build-finished", _strip_pages, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
