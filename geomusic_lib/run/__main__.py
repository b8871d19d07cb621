"""Deprecated entry point: prints a one-line notice, then runs `geomusic run` with the same options."""
import sys

from geomusic_lib.pipeline.run import main

print("note: `python -m geomusic_lib.run` is deprecated (it goes in 0.3); use `geomusic run`.", file=sys.stderr)
sys.exit(main())
