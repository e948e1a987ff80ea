"""open3d support: a lazy import that explains what is missing, and silenced start-up output.

open3d is heavy (about 500 MB) and needs system libraries on headless Linux, so pointea
imports it only inside the functions that use it, through :func:`import_open3d`.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["import_open3d", "quiet_stdout"]


def import_open3d() -> Any:
    try:
        with quiet_stdout():  # its Jupyter banner and the WebRTC backend's log lines
            import open3d as o3d
    except Exception as exc:  # ImportError, or OSError for missing system libraries
        raise ImportError(
            f"open3d is needed for this ({exc}); install it with `pip install open3d` "
            f"(on a headless Linux also: libgl1 libegl1 libgomp1)"
        ) from exc
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


class quiet_stdout:
    """Silence stdout at both levels while native code starts up.

    File descriptor 1 is pointed at ``/dev/null`` (open3d's engine prints there directly,
    bypassing Python), and ``sys.stdout`` is swapped for a sink (open3d's Python package
    prints a banner when imported inside Jupyter). Warnings and errors on stderr stay.
    """

    def __enter__(self) -> None:
        import io as _io
        import sys

        for stream in (sys.stdout, sys.__stdout__):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        self._py_stdout = sys.stdout
        sys.stdout = _io.StringIO()
        try:
            self._saved: int | None = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        except OSError:
            self._saved = None

    def __exit__(self, *exc: object) -> None:
        import sys

        if self._saved is not None:
            os.dup2(self._saved, 1)
            os.close(self._saved)
        sys.stdout = self._py_stdout
