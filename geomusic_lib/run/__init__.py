"""Deprecated: `python -m geomusic_lib.run` keeps working until geomusic 0.3; use `geomusic run`
(the orchestrator lives in `geomusic_lib.pipeline.run`)."""
