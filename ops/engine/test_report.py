"""What test_models.py reports: per-class accuracy from the confusion matrix, the confusion
matrix as a picture, the scores file, and the submission CSV of Something-Something."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw
from sklearn.metrics import confusion_matrix


def confusion(labels: np.ndarray, preds: np.ndarray, num_class: int) -> np.ndarray:
    """``(num_class, num_class)`` counts, rows the true class, columns the prediction."""
    return confusion_matrix(labels, preds, labels=list(range(num_class))).astype(float)


def class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Accuracy of each class that has test videos (rows with no video are left out)."""
    counts = cm.sum(axis=1)
    present = counts > 0
    return np.diag(cm)[present] / counts[present]


def relabelled_upper_bound(cm: np.ndarray) -> float:
    """The class accuracy a relabelling of the predictions could reach: each class (with videos)
    credited with its most frequent prediction, averaged over classes (the release's 'upper bound')."""
    counts = cm.sum(axis=1)
    present = counts > 0
    return float(np.mean(cm.max(axis=1)[present] / counts[present]))


def per_class_lines(cm: np.ndarray, names: Sequence[str]) -> list[str]:
    """One line per class with test videos: its top-1 accuracy, right / videos, and its name."""
    counts = cm.sum(axis=1)
    return [f'  {100 * cm[i, i] / counts[i]:6.2f}%  {int(cm[i, i]):>5} / {int(counts[i]):<5}  {names[i]}'
            for i in range(cm.shape[0]) if counts[i] > 0]


def _colour(values: np.ndarray) -> np.ndarray:
    """Map [0, 1] to a dark-blue -> teal -> yellow ramp (perceptually ordered), uint8 RGB."""
    stops = np.array([[30, 20, 80], [35, 110, 140], [60, 180, 110], [250, 230, 40]], dtype=float)
    pos = np.clip(values, 0, 1) * (len(stops) - 1)
    lo = np.minimum(pos.astype(int), len(stops) - 2)
    frac = (pos - lo)[..., None]
    return (stops[lo] * (1 - frac) + stops[lo + 1] * frac).round().astype(np.uint8)


LABEL_MIN_CELL = 10  # pixels: smaller cells get no class names (they would overlap)
LABEL_MAX_CHARS = 28


def _short(name: str) -> str:
    return name if len(name) <= LABEL_MAX_CHARS else name[:LABEL_MAX_CHARS - 1] + '…'


def save_confusion_png(cm: np.ndarray, path: str, title: str = '', names: Sequence[str] | None = None) -> None:
    """Draw the row-normalised confusion matrix (true class down, prediction across), with the
    class ``names`` beside the rows and above the columns (rotated) when the cells are tall enough
    to hold them; the cells' fractions printed for up to 20 classes."""
    n = cm.shape[0]
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    cell = max(2, min(40, 700 // max(n, 1)))
    grid = np.repeat(np.repeat(_colour(rows), cell, axis=0), cell, axis=1)
    labelled = names is not None and len(names) == n and cell >= LABEL_MIN_CELL
    measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    label_px = int(max(measure.textlength(_short(str(m))) for m in names)) + 8 if labelled else 0
    left, top, margin = 40 + label_px, 40 + label_px, 40
    image = Image.new('RGB', (left + grid.shape[1] + margin, top + grid.shape[0] + margin), 'white')
    image.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title or f'confusion matrix ({n} classes, rows sum to 1)', fill='black')
    draw.text((left, top + grid.shape[0] + 8), 'predicted class ->', fill='black')
    draw.text((4, top - 14), 'true', fill='black')
    if labelled:
        for i, name in enumerate(names):
            text = _short(str(name))
            width = int(measure.textlength(text))
            # rows: right-aligned beside the row; columns: the same text turned upright above the column
            draw.text((left - 4 - width, top + i * cell + (cell - 10) // 2), text, fill='black')
            strip = Image.new('RGB', (width + 2, 12), 'white')
            ImageDraw.Draw(strip).text((0, 0), text, fill='black')
            image.paste(strip.rotate(90, expand=True), (left + i * cell + (cell - 12) // 2, top - 4 - width - 2))
    if n <= 20:  # small matrices: print the per-cell fraction
        for i in range(n):
            for j in range(n):
                shade = 'black' if rows[i, j] > 0.6 else 'white'
                draw.text((left + j * cell + 2, top + i * cell + 2), f'{rows[i, j]:.2f}'[1:] if rows[i, j] < 1
                          else '1', fill=shade)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.save(path)


def write_submission(path: str, video_ids: list[str], scores: np.ndarray, categories: list[str],
                     top5_indices: bool) -> None:
    """Something-Something submission: ``id;category`` per video (V1), or ``id;c1;c2;c3;c4;c5``
    with the top-5 class indices (V2)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    order = np.argsort(-scores, axis=1)
    with open(path, 'w') as f:
        for vid, ranked in zip(video_ids, order):
            if top5_indices:
                f.write(';'.join([vid] + [str(int(c)) for c in ranked[:5]]) + '\n')
            else:
                f.write(f'{vid};{categories[int(ranked[0])]}\n')
