"""What a notebook imports to open its stage: the params, the run directory, plotting.

    params, run = open_stage(params_file, run_name)

Nothing here changes the kernel's working directory. Relative paths in a params file mean
the same thing from `notebooks/` (JupyterLab, papermill `--cwd notebooks`) and from the
repository root (plain papermill): the params file is looked up from the current folder
and its parents, and every path in it is resolved against the folder holding `params/`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import plotly.io as pio
import yaml
from plotly.io.base_renderers import MimetypeRenderer

from geomusic_lib.params import Params, ParamsError, load_params
from geomusic_lib.rundir import RunDir

BOOK_RENDERER = "geomusic_book"
PLOTLY_RENDERER = f"plotly_mimetype+{BOOK_RENDERER}"


def find_params_file(params_file: str | Path, start: str | Path | None = None) -> Path:
    """`params_file` as given, or found under the nearest folder (from `start`, default the
    cwd, upwards) that makes it exist: `../params/x.yaml` works from the repository root and
    `params/x.yaml` from `notebooks/`."""
    given = Path(params_file).expanduser()
    if given.is_absolute():
        candidates = [given]
    else:
        here = Path(start or Path.cwd()).resolve()
        folders = [here, *here.parents]
        candidates = [f / given for f in folders] + [f / "notebooks" / given for f in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ParamsError(f"{params_file}: params file not found from {Path(start or Path.cwd()).resolve()} or any "
                      "folder above it. Use one of params/*.yaml, e.g. params/default.yaml")


def open_stage(
    params_file: str | Path,
    run_name: str | None = None,
    overrides: dict[str, Any] | None = None,
    show: Sequence[str] | None = None,
) -> tuple[Params, RunDir]:
    """Load the params for one notebook and print what is used; return them with the run's `RunDir`.

    `run_name` (when given) replaces the file's `run_name`. `show` lists the top-level
    sections to print (None prints all). Also sets up plotly so that the executed
    notebook's figures render in the book with no network.
    """
    path = find_params_file(params_file)
    merged = dict(overrides or {})
    if run_name:
        merged["run_name"] = run_name
    params = load_params(path, merged)
    setup_plotting()
    print(f"params file: {_shown(path, params.root)}   run directory: {_shown(params.run_dir, params.root)}")
    print(format_params(params, show))
    return params, RunDir(params.run_dir)


def _shown(path: Path, root: Path) -> str:
    """`path` relative to `root` when it lies inside it (short, and the same on every machine)."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return os.fspath(path)


def format_params(params: Params, show: Sequence[str] | None = None) -> str:
    """The effective params (after defaults and overrides) as YAML, optionally a few sections."""
    plain = params.to_plain()
    if show is not None:
        unknown = [key for key in show if key not in plain]
        if unknown:
            raise KeyError(f"show={unknown}: not a params section; choose from {sorted(plain)}")
        plain = {key: plain[key] for key in show}
    return yaml.safe_dump(plain, sort_keys=False, default_flow_style=None, width=100).rstrip()


def setup_plotting() -> None:
    """Render plotly figures as the JupyterLab mimetype *and* as HTML for the book.

    The HTML half draws with `window.Plotly`, which the book loads once from its own
    `_static/` (book/_ext/plotly_offline.py), so pages work offline and do not each carry
    plotly.js.
    """
    pio.renderers[BOOK_RENDERER] = BookHtmlRenderer()
    pio.renderers.default = PLOTLY_RENDERER


class BookHtmlRenderer(MimetypeRenderer):
    """A figure as a `<div>` plus the script that draws it with the page's plotly.js: no
    plotly.js and no MathJax from a CDN inside the output."""

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
        html = pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False, full_html=False,
                           default_width="100%", default_height=525, validate=False,
                           config={"responsive": True, "displaylogo": False})
        return {"text/html": html}
