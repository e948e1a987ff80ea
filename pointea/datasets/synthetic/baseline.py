"""A trivial baseline to report beside a model's accuracy on the synthetic sets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ...errors import InputError

__all__ = ["trivial_baseline_accuracy"]


def _extent_features(dataset: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    feats, labels = [], []
    for d in dataset:
        pos = np.asarray(d.pos, dtype=np.float64)
        ext = np.sort(pos.max(0) - pos.min(0))
        feats.append(ext)
        labels.append(int(np.asarray(d.y).reshape(-1)[0]))
    return np.asarray(feats), np.asarray(labels)


def trivial_baseline_accuracy(train_ds: Iterable[Any], test_ds: Iterable[Any]) -> float:
    """Accuracy of a nearest-centroid classifier on sorted bounding-box extents.

    Features are each cloud's three bounding-box side lengths, sorted (rotation about the
    up axis and axis order do not matter), standardised with the train statistics; each
    test cloud gets the class of the nearest train-class centroid. Report it beside a
    model's accuracy: a model must beat it clearly to show it learned shape, not size.

    Args:
        train_ds, test_ds: iterables of ``Data`` with ``pos`` (N, 3) and ``y`` (1,).

    Returns:
        test accuracy in [0, 1].
    """
    xtr, ytr = _extent_features(train_ds)
    xte, yte = _extent_features(test_ds)
    if xtr.size == 0 or xte.size == 0:
        raise InputError("trivial_baseline_accuracy needs non-empty train and test sets")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-9
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    classes = np.unique(ytr)
    centroids = np.stack([xtr[ytr == c].mean(0) for c in classes])
    dist = ((xte[:, None, :] - centroids[None]) ** 2).sum(-1)
    pred = classes[dist.argmin(1)]
    return float((pred == yte).mean())
