"""Show library code in the book, so a notebook never holds a second copy of it.

    show_model_source("fcnn")   # the whole of geomusic_lib/models/fcnn.py, syntax-highlighted
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from geomusic_lib.models import MODELS

if TYPE_CHECKING:
    from IPython.display import Markdown

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # geomusic_lib/


def model_source(name: str) -> tuple[str, str]:
    """The path (relative to the repository) and the source text of the module that defines network `name`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    module = sys.modules[MODELS[name].__module__]
    path = Path(inspect.getsourcefile(module)).resolve().relative_to(PACKAGE_ROOT.parent)
    return path.as_posix(), inspect.getsource(module)


def show_model_source(name: str) -> "Markdown":
    """Network `name`'s module as a Markdown code block (rendered with syntax highlighting in
    JupyterLab and in the book), headed by its file name."""
    path, source = model_source(name)
    from geomusic_lib.core.extras import require

    Markdown = require("IPython.display", "book").Markdown  # noqa: N806 - the IPython class
    return Markdown(f"`{path}`\n\n```python\n{source.rstrip()}\n```")
