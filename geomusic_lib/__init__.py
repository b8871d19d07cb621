"""geomusic: classify music by geographic origin (country, region, continent).

One subpackage per job, each importing only those below it (CONTRIBUTING.md, "The library by job"):
pipeline; book | plots; training | evaluation; predict; features | models; data; core.
"""
