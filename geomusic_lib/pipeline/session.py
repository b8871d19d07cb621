"""What a notebook imports to open its stage: the params, the run directory, plotting.

    params, run = open_stage(params_file, run_name)

Nothing here changes the kernel's working directory. Relative paths in a params file mean
the same thing from `notebooks/` (JupyterLab, papermill `--cwd notebooks`) and from the
repository root (plain papermill): the params file is looked up from the current folder
and its parents, and every path in it is resolved against the folder holding `params/`.

The kernel holds the run's lock (`geomusic_lib.core.runlock`) until it exits, so a second process
cannot write the same run at the same time; kernels started by the orchestrator share its
lock. A notebook run by hand writes to the run named in its `run_name` parameter ("lab" by
default), never to the book's run unless asked. Known input errors (params, data, a missing
earlier stage, a busy run) print as one line instead of a traceback.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import plotly.io as pio
import yaml
from plotly.io.base_renderers import MimetypeRenderer

from geomusic_lib.data.io import DataError
from geomusic_lib.core.params import Params, ParamsError, load_params
from geomusic_lib.core.params_text import format_params
from geomusic_lib.core.rundir import RunDir

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
    _short_errors_in_ipython()
    run = _claim_run(params, path)
    setup_plotting()
    print(f"params file: {_shown(path, params.root)}   run directory: {_shown(params.run_dir, params.root)}")
    show_settings(params, show)
    return params, run


def _claim_run(params: Params, params_file: Path) -> RunDir:
    """Hold the run's lock for the life of this process and write its manifest when it has none
    (a notebook run by hand or by plain papermill)."""
    from geomusic_lib.core.manifest import write_manifest
    from geomusic_lib.core.runlock import RunLock

    run = RunDir(params.run_dir)
    RunLock(run.path).acquire()  # released when the kernel exits
    if not run.manifest.is_file():
        write_manifest(params, _shown(params_file, params.root))
    return run


def known_errors() -> tuple[type[BaseException], ...]:
    """Errors that are about the user's input: they print as one line in a notebook."""
    from geomusic_lib.models.checkpoint import CheckpointError
    from geomusic_lib.core.runlock import RunLockError

    return (DataError, ParamsError, RunLockError, CheckpointError)


def _short_errors_in_ipython() -> None:
    """In IPython, show a known input error as `Name: message` (the cell still fails, so
    papermill stops); unexpected errors keep their full traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def one_line(shell, etype, value, tb, tb_offset=None):  # noqa: ANN001 - IPython's handler signature
        stb = [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, stb)  # IPython leaves the display to the handler
        return stb

    shell.set_custom_exc(known_errors(), one_line)


def _shown(path: Path, root: Path) -> str:
    """`path` relative to `root` when it lies inside it (short, and the same on every machine)."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return os.fspath(path)


def settings_table(params: Params, show: Sequence[str] | None = None) -> "pd.DataFrame":
    """The effective params as a compact two-column table: one row per setting, nested settings
    flattened into `key: value` pairs, so that a long configuration stays readable on a page."""
    import pandas as pd

    plain = yaml.safe_load(format_params(params, show))
    rows = []
    for section, value in plain.items():
        if isinstance(value, dict):
            rows += [(f"{section}.{key}", _compact(inner)) for key, inner in value.items()]
        else:
            rows.append((section, _compact(value)))
    return pd.DataFrame(rows, columns=["setting", "value"])


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_compact(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return "null" if value is None else str(value)


def show_settings(params: Params, show: Sequence[str] | None = None) -> None:
    """The effective settings: a table without index in a notebook, YAML in a plain console."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and getattr(get_ipython(), "kernel", None) is not None:
        display(settings_table(params, show).style.hide(axis="index"))
    else:
        print(format_params(params, show))


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
