"""`python -m geomusic_lib COMMAND ...` is the same as the console command `geomusic COMMAND ...`."""
import sys

from geomusic_lib.pipeline.cli import main

sys.exit(main())
