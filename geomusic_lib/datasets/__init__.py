"""Shipped data files (see uci_geo_music/README.md for source and licence)."""
