"""The run folder: its files, its lock, and the rules for reusing it.

A run folder (``--output-dir``) holds::

    config.json           resolved settings + pointea / torch versions
    metrics.jsonl         one JSON line per completed epoch
    checkpoints/last.pt   the latest epoch (resume from here)
    checkpoints/best.pt   the best epoch on the validation split
    test_metrics.json     final numbers of best.pt on the test split
    training_curves.png   losses, accuracy / mIoU and learning rate per epoch
    .pointea.lock         held (pointea.files.FileLock) by the run using the folder

Only one run may use a folder at a time: :meth:`RunDirectory.acquire` takes an exclusive,
non-blocking ``flock`` on the lock file and keeps it until :meth:`RunDirectory.release` or
process exit (the kernel drops it when the process dies, even on SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..files import FileLock, LockTimeout, atomic_write

__all__ = ["RunDirectory"]


@contextlib.contextmanager
def _as_training_error(path: Path):
    """Turn an OSError (disk full, read-only folder) into a TrainingError naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise TrainingError(
            f"could not write {path}: {exc.strerror or exc} (errno {exc.errno})"
        ) from exc


class RunDirectory:
    """Paths and locking of one run folder.

    Args:
        path: the folder (created when missing).
    """

    LOCK_NAME = ".pointea.lock"
    ARTIFACTS = (
        "config.json",
        "metrics.jsonl",
        "checkpoints",
        "test_metrics.json",
        "training_curves.png",
    )

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock: FileLock | None = None

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    last_path = property(lambda self: self.path / "checkpoints" / "last.pt")
    best_path = property(lambda self: self.path / "checkpoints" / "best.pt")
    test_metrics_path = property(lambda self: self.path / "test_metrics.json")
    curves_path = property(lambda self: self.path / "training_curves.png")
    lock_path = property(lambda self: self.path / RunDirectory.LOCK_NAME)

    # -- locking -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Create the folder and take its lock.

        Raises:
            TrainingError: another run holds the lock, or the folder is not writable.
        """
        lock = FileLock(self.lock_path, timeout=0)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except LockTimeout as exc:  # before OSError: a TimeoutError is an OSError
            raise TrainingError(
                f"output folder {self.path} is in use by another run"
                f"{f' ({exc.holder})' if exc.holder else ''}; wait for it to finish or choose "
                "another --output-dir"
            ) from exc
        except OSError as exc:
            raise TrainingError(
                f"output folder {self.path}: cannot create or open its lock file "
                f"({exc.strerror or exc}); pick a writable --output-dir"
            ) from exc
        self._lock = lock

    def release(self) -> None:
        """Drop the lock (the lock file stays; it is harmless)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._lock is not None

    # -- contents ------------------------------------------------------------------------
    def existing_entries(self) -> list[str]:
        """Names in the folder other than the lock file."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name != self.LOCK_NAME)

    def clear_artifacts(self) -> None:
        """Remove the files of an earlier run (``--overwrite``); other files stay."""
        for name in self.ARTIFACTS:
            p = self.path / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def remove_stale_temporaries(self) -> None:
        """Delete half-written ``.*.tmp`` files left by a run killed while saving."""
        for folder in (self.path, self.checkpoint_dir):
            if folder.is_dir():
                for p in folder.glob(".*.tmp"):
                    with contextlib.suppress(OSError):
                        p.unlink()

    def write_json(self, path: Path, obj: Any) -> None:
        """Write ``obj`` as indented JSON, atomically."""
        data = (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()
        with _as_training_error(path):
            atomic_write(path, lambda f: f.write(data))

    def read_metrics(self) -> list[dict[str, Any]]:
        """The epoch records of ``metrics.jsonl`` (a torn last line is ignored)."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                obj = json.loads(line)
                if isinstance(obj, dict) and "epoch" in obj:
                    records.append(obj)
        return records

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace ``metrics.jsonl`` with ``records`` (used when resuming)."""
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
        with _as_training_error(self.metrics_path):
            atomic_write(self.metrics_path, lambda f: f.write(data))

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one epoch record to ``metrics.jsonl`` and flush it to disk."""
        with _as_training_error(self.metrics_path), open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r}, locked={self.locked})"
