"""``nst grid``: one content image stylized with every style at every strength, laid out as a labelled
contact sheet (rows: styles, columns: strengths), so the balance can be chosen by eye, as the article
suggests with its grid of weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .errors import UserError

LABEL_HEIGHT = 22
GAP = 4


def parse_strengths(text: str) -> tuple[float, ...]:
    """``"0.2,0.5,0.8"`` -> (0.2, 0.5, 0.8), each from 0 to 1."""
    from .settings import parse_floats

    values = parse_floats(text, "--strengths")
    if not values or any(not 0 <= v <= 1 for v in values):
        raise UserError(f"--strengths must be numbers from 0 (barely styled) to 1 (all style), got {text!r}")
    return values


@dataclass
class Grid:
    """The cells of a grid as they are made: ``cells[(row, column)]`` is an RGB uint8 image."""

    row_labels: Sequence[str]
    column_labels: Sequence[str]
    cells: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def image(self) -> np.ndarray:
        """The contact sheet: a header row of column labels, each row labelled above its first cell."""
        import cv2

        from .images import resize

        first = next(iter(self.cells.values()))
        h, w = first.shape[:2]
        rows, columns = len(self.row_labels), len(self.column_labels)
        height = LABEL_HEIGHT + rows * (h + LABEL_HEIGHT + GAP)
        width = columns * (w + GAP) - GAP
        sheet = np.full((height, width, 3), 255, np.uint8)
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
        for c, label in enumerate(self.column_labels):
            cv2.putText(sheet, label, (c * (w + GAP) + 4, LABEL_HEIGHT - 7), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        for r, label in enumerate(self.row_labels):
            top = LABEL_HEIGHT + r * (h + LABEL_HEIGHT + GAP)
            cv2.putText(sheet, label[:60], (4, top + LABEL_HEIGHT - 7), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
            for c in range(columns):
                cell = self.cells.get((r, c))
                if cell is not None:
                    y, x = top + LABEL_HEIGHT, c * (w + GAP)
                    sheet[y:y + h, x:x + w] = resize(cell, h, w)
        return sheet


def make_grid(content: np.ndarray, styles: Sequence[tuple[str, np.ndarray]], strengths: Sequence[float],
              stylize: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
              on_cell: Callable[[int, int], None] = lambda done, total: None) -> Grid:
    """Stylize ``content`` with each ``(label, style)`` at each strength through ``stylize(content, style,
    strength)`` (which returns an RGB uint8 image) and return the grid."""
    grid = Grid([label for label, _ in styles], [f"strength {s:g}" for s in strengths])
    total = len(styles) * len(strengths)
    for r, (_, style) in enumerate(styles):
        for c, strength in enumerate(strengths):
            grid.cells[(r, c)] = stylize(content, style, strength)
            on_cell(len(grid.cells), total)
    return grid
