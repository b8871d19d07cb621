"""Sphinx extension: launch buttons open the notebook the repository holds.

A run's book renders its executed copies from `book/notebooks/NN.ipynb`, while the repository
keeps the notebooks (without outputs) in `notebooks/NN.ipynb`. sphinx-book-theme builds its
launch links (Binder, JupyterHub) from the page's path, so they are pointed at the repository's
copy here. Without a repository URL there are no launch buttons and this does nothing.
"""
from __future__ import annotations

EXECUTED, SOURCE = "/book/notebooks/", "/notebooks/"


def repository_path(url: str) -> str:
    """A launch link to an executed copy, pointed at the same notebook in the repository."""
    return url.replace(EXECUTED, SOURCE)


def _launch_links_to_repository(app, pagename, templatename, context, doctree) -> None:
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group.get("buttons", []):
                if "url" in button:
                    button["url"] = repository_path(button["url"])


def setup(app):
    # after sphinx-book-theme's add_launch_buttons (priority 501)
    app.connect("html-page-context", _launch_links_to_repository, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
