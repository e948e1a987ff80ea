"""The exceptions pointea raises on bad input.

Every problem pointea detects in a file, a tensor, a checkpoint or a flag is raised as a
subclass of :class:`PointeaError`, with a message that names the file (or argument), the
field and what was wrong. The subclasses also derive from the matching built-in type, so
``except ValueError`` keeps working for callers who do not know pointea's types.
"""

from __future__ import annotations


class PointeaError(Exception):
    """Base class of every error pointea raises on purpose."""


class InputError(PointeaError, ValueError):
    """A tensor or argument handed to a layer, model or function is malformed."""


class DataError(PointeaError, ValueError):
    """A dataset or user file is missing, corrupt, truncated or inconsistent."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset's files are not where they were expected (says how to get them)."""


class DownloadError(PointeaError, RuntimeError):
    """A download failed, was refused, or its checksum did not match."""


class CheckpointError(PointeaError, ValueError):
    """A checkpoint is unreadable, unsafe, or does not match the requested model/task."""


class TrainingError(PointeaError, RuntimeError):
    """A training run cannot continue (non-finite loss, output folder in use, ...)."""


class OutputExistsError(PointeaError, FileExistsError):
    """Writing an output would replace a file the user owns: one of the command's own
    inputs (never replaced), or an existing file pointea did not write (replaced only
    when asked, e.g. with ``--overwrite``).

    Attributes:
        path: the file that would have been replaced.
    """

    def __init__(self, path: object, message: str) -> None:
        self.path = path
        super().__init__(message)
