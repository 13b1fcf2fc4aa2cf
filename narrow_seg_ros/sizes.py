"""Sizes written as text, one parser per order, each named for it:

* :func:`parse_hw` reads ``HxW``, height first: the order of numpy shapes and of every
  ``narrow-seg ... --size``;
* :func:`parse_wh` reads ``WxH``, width first: the ROS order (sensor_msgs, image_proc) of
  seg_node's ``output_size``.

Both return ``(height, width)``, the order the code works in.
"""

from __future__ import annotations

import argparse


class SizeError(ValueError, argparse.ArgumentTypeError):
    """A malformed size. Also an ArgumentTypeError, so that argparse prints the message as it is
    when a parser is an option's ``type``."""


def parse_hw(text: str) -> tuple[int, int]:
    """``'1024x2048'`` → ``(1024, 2048)``: height x width."""
    return _two_positive(text, "HxW (height x width, e.g. 1024x2048)")


def parse_wh(text: str) -> tuple[int, int]:
    """``'640x480'`` → ``(480, 640)``: width x height, returned as (height, width)."""
    w, h = _two_positive(text, "WxH (width x height, e.g. 640x480)")
    return h, w


def _two_positive(text: str, form: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise SizeError(f"size must look like {form}, got {text!r}") from None
    if a <= 0 or b <= 0:
        raise SizeError(f"size must be positive, {form}, got {text!r}")
    return a, b
