"""Shared fixtures of the engine tests: a tiny offline classification set.

Use with ``from fixtures_engine import cls_root  # noqa: F401`` in a test module.
"""

from __future__ import annotations

import pytest

from pointea.datasets import ensure_synthetic


@pytest.fixture(scope="module")
def cls_root(tmp_path_factory):
    """3 classes x 6 training and 2 test clouds of 128 points (seconds to train on)."""
    root = tmp_path_factory.mktemp("cls_data")
    return ensure_synthetic("modelnet40", root=root, num_classes=3, train_per_class=6,
                            test_per_class=2, points=128)
