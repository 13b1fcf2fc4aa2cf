"""Frames from a folder of images or a video file, without ROS (image_player plays them,
``narrow-seg infer`` segments them)."""

from __future__ import annotations

from pathlib import Path

import cv2

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff"}


def list_frames(source: Path) -> list[Path]:
    """Image files under ``source`` (recursively, sorted: a Cityscapes split plays city by city)."""
    frames = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "gtFine" not in p.parts)
    if not frames:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {source}")
    return frames


class FrameSource:
    """Frames from a folder (preloaded: steady rate) or a video file (read as played), as bgr8."""

    def __init__(self, source: str, loop: bool, max_preload: int = 300):
        path = Path(source)
        self.loop = loop
        self.video = None
        self.index = 0
        if path.is_dir():
            files = list_frames(path)[:max_preload]
            self.frames = [cv2.imread(str(f), cv2.IMREAD_COLOR) for f in files]
            if any(f is None for f in self.frames):
                raise ValueError(f"could not read every image under {path}")
        elif path.is_file():
            self.video = cv2.VideoCapture(str(path))
            if not self.video.isOpened():
                raise ValueError(f"cannot open video {path}")
            self.frames = []
        else:
            raise ValueError(f"source {source!r} is neither a folder of images nor a video file")

    def next(self):
        """The next bgr8 frame, or None when the source is exhausted (and not looping)."""
        if self.video is not None:
            ok, frame = self.video.read()
            if not ok and self.loop:
                self.video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self.video.read()
            return frame if ok else None
        if self.index >= len(self.frames):
            if not self.loop:
                return None
            self.index = 0
        frame = self.frames[self.index]
        self.index += 1
        return frame
