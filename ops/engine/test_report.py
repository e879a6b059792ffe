"""What test_models.py reports: per-class accuracy from the confusion matrix, the confusion
matrix as a picture, the scores file, and the submission CSV of Something-Something."""
from __future__ import annotations

import os

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


def _colour(values: np.ndarray) -> np.ndarray:
    """Map [0, 1] to a dark-blue -> teal -> yellow ramp (perceptually ordered), uint8 RGB."""
    stops = np.array([[30, 20, 80], [35, 110, 140], [60, 180, 110], [250, 230, 40]], dtype=float)
    pos = np.clip(values, 0, 1) * (len(stops) - 1)
    lo = np.minimum(pos.astype(int), len(stops) - 2)
    frac = (pos - lo)[..., None]
    return (stops[lo] * (1 - frac) + stops[lo + 1] * frac).round().astype(np.uint8)


def save_confusion_png(cm: np.ndarray, path: str, title: str = '') -> None:
    """Draw the row-normalised confusion matrix (true class down, prediction across)."""
    n = cm.shape[0]
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    cell = max(2, min(40, 700 // max(n, 1)))
    grid = np.repeat(np.repeat(_colour(rows), cell, axis=0), cell, axis=1)
    margin = 40
    image = Image.new('RGB', (grid.shape[1] + 2 * margin, grid.shape[0] + 2 * margin), 'white')
    image.paste(Image.fromarray(grid), (margin, margin))
    draw = ImageDraw.Draw(image)
    draw.text((margin, 8), title or f'confusion matrix ({n} classes, rows sum to 1)', fill='black')
    draw.text((margin, margin + grid.shape[0] + 8), 'predicted class ->', fill='black')
    draw.text((4, margin), 'true', fill='black')
    if n <= 20:  # small matrices: print the per-cell fraction
        for i in range(n):
            for j in range(n):
                shade = 'black' if rows[i, j] > 0.6 else 'white'
                draw.text((margin + j * cell + 2, margin + i * cell + 2), f'{rows[i, j]:.2f}'[1:] if rows[i, j] < 1
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
