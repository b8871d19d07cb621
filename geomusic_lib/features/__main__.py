"""Deprecated entry point: prints a one-line notice, then runs `geomusic features` with the same options."""
import sys

from geomusic_lib.features.cli import main

print("note: `python -m geomusic_lib.features` is deprecated (it goes in 0.3); use `geomusic features`.", file=sys.stderr)
sys.exit(main())
