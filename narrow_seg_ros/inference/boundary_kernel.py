"""Compiled inner loop of the exact mask: torch's bilinear blend, pixel by pixel, in boundary cells.

Numba-compiled (cached on disk after the first call, parallel over cells, GIL released). For each
boundary cell it evaluates, at every output pixel the cell covers, the blend of each candidate
class exactly as PyTorch's CPU kernel rounds it, ``fma(t0, h0, t1 * h1)`` with
``t = fma(x00, w0, x01 * w1)`` in float32, and keeps the first maximum (``torch.argmax`` ties go
to the lower class; candidates ascend). An FMA is a product rounded once with the addend: the
float32 product is exact in float64, so one float64 add and one rounding to float32 reproduce it
(matched bit for bit against torch 2.13's AVX2/AVX-512 build by the tests).
"""

from __future__ import annotations

import os
import threading

import numba
import numpy as np

# numba's own (workqueue) threading layer, not OpenMP, which numba picks where it finds libgomp:
# OpenMP's worker threads spin after each kernel and take the cores that onnxruntime's next run
# needs (the default model's frame, 1024x2048 bgr8 on 2 cores, medians of 200: 14.5 ms with OpenMP,
# 11.2 ms with workqueue; network 8.7 against 6.3 ms). Read at the first parallel kernel's launch;
# NUMBA_THREADING_LAYER still chooses where it is set.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"
# The workqueue layer aborts the process if two Python threads launch parallel kernels at once;
# segmenters used from several threads take turns here instead.
_launch = threading.Lock()


def set_threads(count: int) -> None:
    """Kernel threads (at most the cores numba saw at import)."""
    numba.set_num_threads(max(1, min(int(count), numba.config.NUMBA_NUM_THREADS)))


def fill_boundary_cells(mask, low, cell_i, cell_j, keep, rows, cols) -> None:
    """See :func:`_fill_boundary_cells`; serialised across threads."""
    args = (mask, low, cell_i, cell_j, keep, rows, cols)
    with _launch:
        if _fill_boundary_cells.signatures:
            _fill_boundary_cells(*args)
        else:
            _first_call_off_the_main_thread(args)


def _first_call_off_the_main_thread(args) -> None:
    """The first call compiles the kernel (or loads it from numba's cache) through ctypes callbacks.
    A KeyboardInterrupt raised inside such a callback is swallowed ("Exception ignored") and breaks
    numba's cache writer (RuntimeError "no compiled object yet"): a node given Ctrl-C while warming
    up exited with a traceback. Python runs signal handlers on the main thread only, so here the
    compile runs on another thread and a Ctrl-C is raised in the caller once it is done (at most
    the compile's seconds later, and only on a first start: later starts load the cache)."""
    failure: list[BaseException] = []

    def first_call() -> None:
        try:
            _fill_boundary_cells(*args)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=first_call, name="numba-compile", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


@numba.njit(inline="always")
def _fma32(a, b, c):
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


@numba.njit(cache=True, nogil=True, parallel=True)
def _fill_boundary_cells(mask, low, cell_i, cell_j, keep, rows, cols):  # pragma: no cover - compiled
    """Write the argmax of the blended logits into ``mask`` over every pixel of the listed cells.

    ``mask`` uint8 (H, W); ``low`` float32 (C, h, w); ``cell_i``/``cell_j`` the cells' low-res
    row/column; ``keep`` bool (C, cells) the classes that may win in each cell (others lose by
    more than any rounding); ``rows``/``cols`` tuples (start, count, hi_of, w_lo, w_hi) of the
    taps along each axis.
    """
    row_start, row_count, row_hi, row_w_lo, row_w_hi = rows
    col_start, col_count, col_hi, col_w_lo, col_w_hi = cols
    num_classes = low.shape[0]
    for n in numba.prange(cell_i.size):
        i, j = cell_i[n], cell_j[n]
        i1, j1 = row_hi[i], col_hi[j]
        classes = np.empty(num_classes, np.int64)
        k = 0
        for c in range(num_classes):
            if keep[c, n]:
                classes[k] = c
                k += 1
        if k == 0:  # cannot happen with a sound pruning; evaluate every class rather than guess
            for c in range(num_classes):
                classes[c] = c
            k = num_classes
        t0 = np.empty(k, np.float32)
        t1 = np.empty(k, np.float32)
        for x in range(col_start[j], col_start[j] + col_count[j]):
            w_lo, w_hi = col_w_lo[x], col_w_hi[x]
            for q in range(k):  # torch's first (horizontal) pass
                c = classes[q]
                t0[q] = _fma32(low[c, i, j], w_lo, low[c, i, j1] * w_hi)
                t1[q] = _fma32(low[c, i1, j], w_lo, low[c, i1, j1] * w_hi)
            for y in range(row_start[i], row_start[i] + row_count[i]):
                h_lo, h_hi = row_w_lo[y], row_w_hi[y]
                best = _fma32(t0[0], h_lo, t1[0] * h_hi)
                winner = classes[0]
                for q in range(1, k):
                    value = _fma32(t0[q], h_lo, t1[q] * h_hi)
                    if value > best:
                        best, winner = value, classes[q]
                mask[y, x] = winner
