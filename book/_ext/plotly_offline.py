"""Sphinx extension: serve plotly.js from the book itself, only to the pages with figures.

The notebooks render figures as HTML that expects `window.Plotly` (see
`geomusic_lib.pipeline.session`). This extension copies the plotly.js bundled with the installed
`plotly` package into `_static/` (one file the browser caches, not a 4.6 MB copy per page)
and loads it, with the world map geometry that plotly.js would otherwise fetch from a CDN,
only on pages whose body holds a plotly figure: text pages load none of it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

PLOTLY_JS = "plotly.min.js"
GEO_JS = "plotly-geo-world.js"


def _bundled_plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / PLOTLY_JS


def _world_map_js() -> str:
    """plotly.js fetches its world geometry from a CDN; preload the copy shipped in geomusic_lib."""
    from geomusic_lib.plots.data import WORLD_TOPOJSON

    data = Path(WORLD_TOPOJSON).read_text(encoding="utf-8")
    return ("window.PlotlyGeoAssets = window.PlotlyGeoAssets || {topojson: {}};\n"
            f"window.PlotlyGeoAssets.topojson['world_110m'] = {data};\n")


def _copy_plotly_js(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_bundled_plotly_js(), static / PLOTLY_JS)
        (static / GEO_JS).write_text(_world_map_js(), encoding="utf-8")


def has_plotly_figure(body: str) -> bool:
    """Whether a page's HTML body holds a plotly figure (the div plotly's HTML output draws into)."""
    return 'class="plotly-graph-div' in body


def _scripts_for_figures(app, pagename, templatename, context, doctree) -> None:
    """Add plotly.js to this page only (Sphinx resets the script list for every page)."""
    if has_plotly_figure(context.get("body", "")):
        app.add_js_file(GEO_JS, priority=199)
        app.add_js_file(PLOTLY_JS, priority=200)


def setup(app):
    if not _bundled_plotly_js().is_file():
        raise FileNotFoundError(f"{_bundled_plotly_js()}: plotly's bundled plotly.js is missing; reinstall plotly")
    app.connect("html-page-context", _scripts_for_figures)
    app.connect("build-finished", _copy_plotly_js)
    # env_version: bumped when the pages this extension writes change, so books rebuild every page.
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
