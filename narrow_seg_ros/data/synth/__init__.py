"""Procedural street scenes written in the Cityscapes folder layout.

Real Cityscapes cannot ship with the package, so tests, demos and smoke-training runs use these
scenes instead: a pinhole camera above a (possibly curving) road with lane markings, sidewalks,
building facades with windows, hedges, walls, fences, a distant skyline, poles, street lamps,
traffic signs and lights, trees, parked and moving cars, trucks and buses, pedestrians, cyclists,
bins, an ego-vehicle hood, varied lighting, haze and sensor noise.

Labels are exact by construction: every shape is rasterised into the image and into the label map
with the same polygon and the same non-anti-aliased fill, and each object is drawn off-canvas
first and copied back only where its labelled shapes lie and where it is nearer than what is
already there (a z-buffer). Image-only details (windows, lights, markings) can only recolour
pixels of their own object, so image boundaries always coincide with label boundaries.
Label maps hold Cityscapes *label ids*, as ``*_gtFine_labelIds.png`` does.

World coordinates are metres in the frame of the road: ``u`` across the road (right positive,
0 on the centre line), ``s`` along it, ``z`` up. A constant-curvature road is approximated by
shifting points sideways by ``curvature * Z**2 / 2`` at distance ``Z`` ahead of the camera, so the
camera always looks along the road, as a car following it does.

Modules, each using only those above it: ``colors`` (palettes), ``layout`` (the random street),
``camera`` (projection), ``raster`` (image, labels and depth drawn alike), ``static`` (sky, ground,
roadside), ``objects`` (street objects), ``render`` (one frame), ``writer`` (PNG files).
"""

from .layout import STREET_AHEAD, Street
from .render import FPS, render_scene, render_sequence
from .writer import ANNOTATED_FRAME, SPLITS, generate

__all__ = [
    "ANNOTATED_FRAME",
    "FPS",
    "SPLITS",
    "STREET_AHEAD",
    "Street",
    "generate",
    "render_scene",
    "render_sequence",
]
