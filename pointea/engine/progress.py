"""Progress display of the loops: a bar that is only told how far the loop got.

The bar never iterates the loader itself (``tqdm.auto``'s async mixin calls
``iter(loader)`` when a bar is built, which draws from the random generators and so
changed the training run). Bars are drawn only on a terminal; with the output going to
a file the loops print nothing per step and the trainer writes one line per epoch.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["ProgressBar", "bars_wanted"]


def bars_wanted(requested: bool, stream: Any = None) -> bool:
    """Whether to draw bars: asked for, and ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    if not requested:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


class ProgressBar:
    """A step counter drawn with tqdm (``enabled=False``: does nothing).

    Args:
        total: number of steps (``None``: unknown).
        desc: label.
        enabled: draw at all.
        postfix_interval: seconds between postfix refreshes (each may read the device).
    """

    def __init__(
        self, total: int | None, desc: str, *, enabled: bool, postfix_interval: float = 1.0
    ) -> None:
        self.bar = None
        self.postfix_interval = postfix_interval
        self._last_postfix = 0.0
        if enabled:
            from tqdm.std import tqdm

            self.bar = tqdm(
                total=total,
                desc=desc,
                leave=False,
                dynamic_ncols=True,
                mininterval=0.5,
                file=sys.stderr,
            )

    def update(self, postfix: Any = None) -> None:
        """One step done; ``postfix()`` (a callable returning a dict) is called rarely."""
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.monotonic()
        if postfix is not None and now - self._last_postfix >= self.postfix_interval:
            self._last_postfix = now
            self.bar.set_postfix(postfix(), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
