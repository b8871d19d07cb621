"""The run's book configuration, from the one `_config.yml` at the repository root.

`repository: url:` is the single place that says where this project is published. Set, every
run's book gets a repository and an issues link in its header, a Binder launch button on each
notebook page and `git clone <url>` in the quick start. Empty (the default), none of them
appears and the quick start says "clone the repository" without a made-up address.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from geomusic_lib.core.fileio import atomic_write_text

BINDER = "https://mybinder.org"
LAUNCH_PROVIDERS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")


def repository_url(config: dict[str, Any]) -> str:
    """The repository URL of a book config (`repository: url:`), or "" when unset."""
    return str((config.get("repository") or {}).get("url") or "").strip().rstrip("/")


def book_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config a run's book is built with: header buttons and Binder launch buttons on when
    the repository URL is set, every repository link and launch provider off when it is not."""
    url = repository_url(config)
    html = {**(config.get("html") or {}), "use_repository_button": bool(url), "use_issues_button": bool(url),
            "use_edit_page_button": False}  # the pages are generated per run: no source file to edit
    launch = dict(config.get("launch_buttons") or {})
    if url:
        launch.setdefault("binderhub_url", BINDER)
    else:
        launch.update({key: "" for key in LAUNCH_PROVIDERS}, thebe=False)
    repository = {**(config.get("repository") or {}), "url": url}
    return {**config, "html": html, "launch_buttons": launch, "repository": repository}


def read_config(source: Path) -> dict[str, Any]:
    """The repository's `_config.yml` as a dict."""
    return yaml.safe_load(source.read_text(encoding="utf-8")) or {}


def write_book_config(source: Path, target: Path, substitutions: dict[str, str] | None = None) -> dict[str, Any]:
    """Write `book_config` of the YAML file `source`, with the run's MyST `substitutions`, to `target`
    (the one write of a run's `_config.yml`); returns it."""
    config = book_config(read_config(source))
    if substitutions:
        config.setdefault("parse", {})["myst_substitutions"] = dict(substitutions)
    atomic_write_text(target, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return config


def install_markdown(url: str) -> str:
    """The quick start's install steps: `git clone <url>` when the repository URL is known, else
    the same steps from a clone the reader already has (no placeholder address)."""
    setup = ('python -m venv .venv && . .venv/bin/activate\n'
             'pip install -e ".[dev]"          # or: conda env create -f environment.yml\n')
    if url:
        return f"```bash\ngit clone {url} geomusic && cd geomusic\n{setup}```\n"
    return f"Clone the repository, then, in its folder:\n\n```bash\n{setup}```\n"
