"""Deprecated entry point: prints a one-line notice, then runs `geomusic predict` with the same options."""
import sys

from geomusic_lib.predict.cli import main

print("note: `python -m geomusic_lib.predict` is deprecated (it goes in 0.3); use `geomusic predict`.", file=sys.stderr)
sys.exit(main())
