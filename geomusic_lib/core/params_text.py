"""The effective params as text, for a notebook's settings table and the book's run page."""
from __future__ import annotations

from typing import Sequence

import yaml

from geomusic_lib.core.params import Params


def format_params(params: Params, show: Sequence[str] | None = None) -> str:
    """The effective params (after defaults and overrides) as YAML, optionally a few sections."""
    plain = params.to_plain()
    if show is not None:
        unknown = [key for key in show if key not in plain]
        if unknown:
            raise KeyError(f"show={unknown}: not a params section; choose from {sorted(plain)}")
        plain = {key: plain[key] for key in show}
    return yaml.safe_dump(plain, sort_keys=False, default_flow_style=None, width=100).rstrip()
