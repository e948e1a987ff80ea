"""``ensure_synthetic``: generate a synthetic set once, reuse it afterwards.

The decision rests on the marker file the writers leave in each folder
(:func:`~pointea.datasets.synthetic.writers.read_marker`):

* no folder: generate (defaults, overridden by the sizes and seed asked for);
* a folder whose marker is current (same generator version and task):
  reuse it whatever its sizes and seed, unless the caller *asked* for particular sizes or
  a seed that differ from the marker's; then regenerate with the sizes and seed the
  marker records, overridden by those asked for;
* a marker with an older generator version: regenerate with the sizes and seed it
  records (overridden by those asked for);
* a folder without a pointea marker: it may hold someone's own files, so it is moved
  aside (renamed ``<folder>.unmarked-<time>``, never deleted) and a new set generated.

Every decision other than a silent reuse of a default-sized set is said in one line on
stderr (``quiet=True`` silences them).
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import DataError, InputError
from ...files import FileLock
from .shapes import SEGMENTATION_CATEGORIES
from .writers import (
    CLS_FOLDER,
    GENERATOR_VERSION,
    SEG_FOLDER,
    read_marker,
    write_classification,
    write_part_segmentation,
)

__all__ = ["ensure_synthetic", "resolve_task", "synthetic_defaults", "synthetic_folder"]

_TASKS = {"modelnet40": "modelnet40", "shapenetpart": "shapenetpart"}
_NOT_SIZES = ("root", "seed", "overwrite", "shapes_per_file")


def resolve_task(task: str) -> str:
    """``"modelnet40"`` or ``"shapenetpart"`` for a task name (any case)."""
    key = _TASKS.get(str(task).lower())
    if key is None:
        raise InputError(f"task must be one of {sorted(set(_TASKS))}, got {task!r}")
    return key


def synthetic_folder(task: str) -> str:
    """The archive folder a task's stand-in is written to under its root."""
    return _writer(resolve_task(task))[1]


def _writer(key: str) -> tuple[Callable[..., Path], str]:
    if key == "modelnet40":
        return write_classification, CLS_FOLDER
    return write_part_segmentation, SEG_FOLDER


# the writers' signatures hold the default sizes (captured once: tests may wrap the writers)
_SIGNATURES = {
    "modelnet40": inspect.signature(write_classification),
    "shapenetpart": inspect.signature(write_part_segmentation),
}


def synthetic_defaults(task: str) -> dict[str, Any]:
    """The default sizes of a task's set (read from its writer's signature)."""
    out = {
        name: p.default
        for name, p in _SIGNATURES[resolve_task(task)].parameters.items()
        if p.kind is p.KEYWORD_ONLY and name not in _NOT_SIZES
    }
    if "categories" in out and out["categories"] is None:
        out["categories"] = list(SEGMENTATION_CATEGORIES)
    return out


def _describe(seed: Any, params: dict[str, Any]) -> str:
    sizes = ", ".join(
        f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in sorted(params.items())
    )
    return f"seed {seed}, {sizes}"


def ensure_synthetic(
    task: str,
    root: str | os.PathLike = "data/synthetic",
    seed: int | None = None,
    *,
    quiet: bool = False,
    **sizes: Any,
) -> Path:
    """Generate the synthetic set for ``task`` under ``root`` unless a usable one is there.

    A set already under ``root`` made by pointea's current generator is used as it is,
    whatever sizes and seed it was made with (e.g. a custom set written by
    ``pointea-data synthetic``), unless ``seed`` or ``sizes`` are given and differ from
    what its marker records. See the module docstring for every case. Several processes
    (e.g. torchrun ranks) may call this at once: a file lock lets the first generate
    while the others wait and then reuse its set.

    Args:
        task: ``"modelnet40"`` or ``"shapenetpart"``.
        root: where to write; pass the returned path to the reader.
        seed: generator seed; ``None`` accepts any existing set and generates with 0.
        quiet: do not print the one-line notes on stderr.
        **sizes: forwarded to :func:`write_classification` /
            :func:`write_part_segmentation` (e.g. ``train_per_class=20``).

    Returns:
        ``root`` (the folder holding the archive folder), for ``ModelNet40(root)`` or
        ``ShapeNetPart(root)``.
    """
    key = resolve_task(task)
    _, folder_name = _writer(key)
    defaults = synthetic_defaults(key)
    unknown = set(sizes) - set(defaults)
    if unknown:
        raise InputError(f"unknown size argument(s) for {key}: {sorted(unknown)}")
    asked = dict(sizes)
    if "categories" in asked:
        asked["categories"] = list(asked["categories"])
    root = Path(root).expanduser()
    folder = root / folder_name

    def say(msg: str) -> None:
        if not quiet:
            print(f"pointea: {msg}", file=sys.stderr, flush=True)

    marker = read_marker(folder)
    if _usable(marker, key, seed, asked):
        assert marker is not None
        if marker["params"] != defaults or marker.get("seed") != 0:
            say(
                f"using the existing synthetic {key} set in {folder} "
                f"({_describe(marker.get('seed'), marker['params'])})"
            )
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(root / f".{folder_name}.lock", on_wait=say):
            marker = read_marker(folder)  # another process may have generated meanwhile
            if not _usable(marker, key, seed, asked):
                _regenerate(root, key, marker, seed, asked, say)
    except OSError as exc:
        raise DataError(
            f"{folder}: cannot write the synthetic {key} set there: {exc.strerror or exc}"
        ) from exc
    return root


def _regenerate(
    root: Path,
    key: str,
    marker: dict[str, Any] | None,
    seed: int | None,
    asked: dict[str, Any],
    say: Callable[[str], None],
) -> None:
    """Write the set of ``key`` under ``root`` (the caller holds the lock)."""
    writer, folder_name = _writer(key)
    folder = root / folder_name
    defaults = synthetic_defaults(key)
    base, base_seed = dict(defaults), 0
    if marker is None and (folder.exists() or folder.is_symlink()):
        aside = folder.with_name(f"{folder_name}.unmarked-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(folder, aside)
        say(
            f"{folder} has no pointea marker (not a set made by this generator); "
            f"moved it to {aside.name} (nothing deleted) and generating a new one"
        )
    elif marker is not None and set(marker["params"]) <= set(defaults):
        base.update(marker["params"])  # keep the sizes and seed the set was made with
        base_seed = marker.get("seed", 0)
    params = {**base, **asked}
    use_seed = base_seed if seed is None else seed
    if marker is None:
        how = "generating"
    elif marker.get("version") != GENERATOR_VERSION:
        how = (
            f"regenerating (its marker says generator version {marker.get('version')}, "
            f"this is version {GENERATOR_VERSION}):"
        )
    else:
        made = _describe(marker.get("seed"), marker["params"])
        how = f"regenerating as asked (it was made with {made}):"
    say(f"{how} synthetic {key} set in {folder} with {_describe(use_seed, params)}")
    writer(root, seed=use_seed, overwrite=True, **params)


def _usable(
    marker: dict[str, Any] | None, key: str, seed: int | None, asked: dict[str, Any]
) -> bool:
    """True when ``marker`` describes a current set of ``key`` matching what was asked."""
    if marker is None or marker.get("task") != key or marker.get("version") != GENERATOR_VERSION:
        return False
    if seed is not None and marker.get("seed") != seed:
        return False
    have = marker["params"]
    return all(have.get(k) == v for k, v in asked.items())
