"""`geomusic`, the console command: `geomusic run`, `geomusic tune`, `geomusic predict` and `geomusic features`.

Each command keeps its own options (`geomusic run --help`); this module only dispatches.
"""
from __future__ import annotations

import sys
from importlib import import_module
from typing import Sequence

#: command → (module with `main(argv) -> int`, one line for `geomusic --help`)
COMMANDS = {
    "run": ("geomusic_lib.pipeline.run", "run every notebook of a params file with papermill, then build the run's book"),
    "tune": ("geomusic_lib.pipeline.tune_cli", "tune a run's models; --worker joins a study other processes share"),
    "predict": ("geomusic_lib.predict.cli", "place new tracks with a trained checkpoint (needs no extra)"),
    "features": ("geomusic_lib.features.cli", "extract features for a track table (columns, Spotify, local audio)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return "usage: geomusic COMMAND [options]\n\ncommands:\n" + "\n".join(lines) + \
        "\n\n`geomusic COMMAND --help` lists a command's options."


def main(argv: Sequence[str] | None = None) -> int:
    """Hand the arguments after the command name to that command's `main`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        return 2
    return import_module(COMMANDS[name][0]).main(rest)

