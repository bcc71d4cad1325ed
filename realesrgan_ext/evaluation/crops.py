"""Side-by-side crops: the same region of the HR (or bicubic), and of every row's output, in one PNG.

The region is chosen deterministically where the reference has the most detail (largest
mean gradient magnitude of its luma over the window, first one on ties), since that is where
upscalers differ; flat sky says nothing about them. Panels are labelled above (a label may
hold a second line: the row's scores on the image) and shown at ``zoom`` x nearest-neighbour,
so pixels stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

CROP_SIZE = 96  # px of the output resolution per panel side
ZOOM = 2  # nearest-neighbour magnification of each panel
LINE_HEIGHT = 17
LABEL_HEIGHT = 2 * LINE_HEIGHT + 4  # two lines: the row's name and its scores
TITLE_HEIGHT = 22
GAP = 4
MAX_GRID_ROWS = 24  # images in the combined grid; each image's own grid is always written
_BACKGROUND = 255
_TEXT = (20, 20, 20)


def detail_window(img: np.ndarray, size: int = CROP_SIZE) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``size`` px window with the most gradient energy."""
    height, width = img.shape[:2]
    h, w = min(size, height), min(size, width)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    energy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    # windowed sums over every position, from the summed-area table
    table = cv2.integral(energy)
    sums = table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), h, w


def _panel(img: np.ndarray, window: tuple[int, int, int, int], label: str, zoom: int) -> np.ndarray:
    top, left, h, w = window
    crop = cv2.resize(img[top: top + h, left: left + w], (w * zoom, h * zoom), interpolation=cv2.INTER_NEAREST)
    panel = np.full((LABEL_HEIGHT + crop.shape[0], crop.shape[1], 3), _BACKGROUND, np.uint8)
    panel[LABEL_HEIGHT:] = crop
    for line, text in enumerate(label.split("\n")[:2], 1):
        cv2.putText(panel, _fit_text(text, crop.shape[1]), (3, line * LINE_HEIGHT - 3), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, _TEXT, 1, cv2.LINE_AA)
    return panel


def _fit_text(label: str, width: int) -> str:
    """The label, shortened from the left with '...' until it fits ``width`` px."""
    text = label
    while len(text) > 4 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] > width - 6:
        text = "..." + text[4:]
    return text


def crop_row(images: Sequence[tuple[str, np.ndarray]], reference: np.ndarray, zoom: int = ZOOM) -> np.ndarray:
    """One row of labelled panels, ``(label, BGR image)`` each, all cut where ``reference`` has most detail.

    A label of two lines (``'name\\nscores'``) is drawn on two."""
    window = detail_window(reference)
    panels = [_panel(img, window, label, zoom) for label, img in images]
    gap = np.full((panels[0].shape[0], GAP, 3), _BACKGROUND, np.uint8)
    row = [gap]
    for panel in panels:
        row += [panel, gap]
    return np.concatenate(row, axis=1)


def stack_rows(rows: Sequence[np.ndarray], titles: Sequence[str]) -> np.ndarray:
    """Rows (at most ``MAX_GRID_ROWS``) under each other, each titled, padded to the widest."""
    rows, titles = list(rows)[:MAX_GRID_ROWS], list(titles)[:MAX_GRID_ROWS]
    width = max(r.shape[1] for r in rows)
    parts = []
    for row, title in zip(rows, titles, strict=True):
        head = np.full((TITLE_HEIGHT, width, 3), _BACKGROUND, np.uint8)
        cv2.putText(head, _fit_text(title, width), (GAP, TITLE_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _TEXT, 1,
                    cv2.LINE_AA)
        body = np.full((row.shape[0], width, 3), _BACKGROUND, np.uint8)
        body[:, : row.shape[1]] = row
        parts += [head, body]
    return np.concatenate(parts, axis=0)
