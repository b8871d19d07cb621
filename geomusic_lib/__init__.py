"""geomusic: classify music by geographic origin."""
