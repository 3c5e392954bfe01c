"""The console's assets: a single-page app of plain ES modules (no build step)
and a vendored uPlot, shipped in the package so an offline plant gets it all."""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
