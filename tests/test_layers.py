"""The layer rules of docs/ARCHITECTURE.md, checked on the imports of every module.

The rules are read from the document itself (its layer table and its table of
exceptions), so the document and the check cannot drift apart. Every ``import`` and
``from ... import`` statement counts, those inside functions included; one under
``if TYPE_CHECKING:`` (type hints only, never run) is held to the private-name rules but
not to the layer order.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pointea_testing import REPO_ROOT as ROOT

DOC = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGE = ROOT / "pointea"
ROOT_UNIT = "__init__"  # the package's own __init__.py (``from .. import __version__``)


@dataclass(frozen=True)
class Rules:
    layer: dict[str, int]  # unit -> layer number
    sideways: frozenset[tuple[str, str]]  # (importing unit, imported unit), same layer
    exceptions: frozenset[tuple[str, str]]  # (importing module, imported module)


def _table(section: str, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header starts with ``first_header``."""
    rows: list[list[str]] = []
    inside = False
    for line in section.splitlines():
        if not line.startswith("|"):
            if inside:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not inside:
            inside = cells[0] == first_header
        elif not set(cells[0]) <= set("-: "):
            rows.append(cells)
    assert rows, f"docs/ARCHITECTURE.md: no table headed {first_header!r} under ## Layers"
    return rows


def _paths(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _unit(path: str) -> str:
    """``cli/`` -> ``cli``, ``files.py`` -> ``files``, ``__init__.py`` -> the root."""
    return path.removesuffix("/").removesuffix(".py")


def _module(path: str) -> str:
    """``datasets/room_samples.py`` -> ``pointea.datasets.room_samples``."""
    return "pointea." + path.removesuffix(".py").removesuffix("/").replace("/", ".")


def read_rules(text: str) -> Rules:
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    layer: dict[str, int] = {}
    sideways: set[tuple[str, str]] = set()
    for cells in _table(section, "layer"):
        for path in _paths(cells[1]):
            layer[_unit(path)] = int(cells[0])
        for pair in re.findall(r"`([^`]+)`\s*->\s*`([^`]+)`", cells[-1]):
            sideways.add((_unit(pair[0]), _unit(pair[1])))
    exceptions = {
        (_module(_paths(cells[0])[0]), _module(_paths(cells[1])[0]))
        for cells in _table(section, "importer")
    }
    return Rules(layer, frozenset(sideways), frozenset(exceptions))


RULES = read_rules(DOC.read_text())


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_UNIT


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # the imported module
    name: str | None  # the name imported from it (``from target import name``), if any
    typing_only: bool  # under ``if TYPE_CHECKING:``


def _typing_only_nodes(tree: ast.AST) -> set[int]:
    """``id`` of every node inside the body of an ``if TYPE_CHECKING:`` block."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                inside |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return inside


def imports(module: str, is_package: bool, source: str) -> list[Import]:
    """Every import of a pointea module in ``source``, those inside functions included."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    tree = ast.parse(source)
    typing_only = _typing_only_nodes(tree)
    found: list[Import] = []
    for node in ast.walk(tree):
        hint = id(node) in typing_only
        if isinstance(node, ast.Import):
            found += [
                Import(node.lineno, a.name, None, hint)
                for a in node.names
                if a.name == "pointea" or a.name.startswith("pointea.")
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert node.level <= len(package), f"{module}:{node.lineno}: beyond the package"
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != "pointea" and not target.startswith("pointea."):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if _is_module(sub):  # from pointea import pure_sampling
                    found.append(Import(node.lineno, sub, None, hint))
                else:
                    found.append(Import(node.lineno, target, alias.name, hint))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def broken_rules(importer: str, imp: Import, rules: Rules) -> list[str]:
    """What ``imp`` (an import made by the module ``importer``) breaks."""
    broken = []
    target, name = imp.target, imp.name
    here, there = unit_of(importer), unit_of(target)
    for unit in {here, there}:
        if unit not in rules.layer:
            broken.append(f"{unit!r} has no layer in docs/ARCHITECTURE.md")
    ordered = here in rules.layer and there in rules.layer and not imp.typing_only
    if here != there and ordered:
        if rules.layer[there] > rules.layer[here]:
            broken.append(f"upwards (layer {rules.layer[here]} -> {rules.layer[there]})")
        elif rules.layer[there] == rules.layer[here] and (here, there) not in rules.sideways:
            broken.append(f"same layer ({rules.layer[here]})")
    if name is not None and _private(name):
        broken.append(f"private name {name}")
    parts = target.split(".")
    for i, part in enumerate(parts):
        owner = ".".join(parts[:i])
        if _private(part) and not (importer == owner or importer.startswith(owner + ".")):
            broken.append(f"private module {'.'.join(parts[: i + 1])} outside {owner}")
    return broken


def check_source(
    module: str, source: str, rules: Rules = RULES, *, is_package: bool = False
) -> list[tuple[str, str]]:
    """``(imported module, message)`` for every import of ``source`` that breaks a rule,
    the documented exceptions left out."""
    found = []
    for imp in imports(module, is_package, source):
        if (module, imp.target) in rules.exceptions:
            continue
        for rule in broken_rules(module, imp, rules):
            found.append((imp.target, f"{module}:{imp.line} imports {imp.target}: {rule}"))
    return found


def package_modules() -> list[tuple[str, bool, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out.append((".".join(parts[:-1] if is_package else parts), is_package, path))
    return out


def test_every_unit_has_a_layer():
    units = {p.stem for p in PACKAGE.glob("*.py")}
    units |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(units - set(RULES.layer))
    assert not missing, f"add these to the layer table of docs/ARCHITECTURE.md: {missing}"


def test_package_imports_follow_the_layers():
    found = [
        message
        for module, is_package, path in package_modules()
        for _, message in check_source(module, path.read_text(), is_package=is_package)
    ]
    assert not found, "\n".join(found)


def test_every_exception_is_still_needed():
    no_exceptions = Rules(RULES.layer, RULES.sideways, frozenset())
    used = {
        (module, target)
        for module, is_package, path in package_modules()
        for target, _ in check_source(
            module, path.read_text(), no_exceptions, is_package=is_package
        )
    }
    stale = sorted(RULES.exceptions - used)
    assert not stale, f"remove these rows from the exceptions of docs/ARCHITECTURE.md: {stale}"


@pytest.mark.parametrize(
    "module, source, rule",
    [
        ("pointea.nn.fake", "def f():\n    from ..engine.trainer import train\n", "upwards"),
        ("pointea.ops.fake", "import pointea.models.classifier\n", "upwards"),
        ("pointea.files", "from .labels import category_index\n", "same layer"),
        ("pointea.metrics.fake", "from ..datasets import S3DIS\n", "same layer"),
        ("pointea.models.fake", "from ..datasets.room_samples import RoomSamples\n", "same layer"),
        ("pointea.engine.fake", "from ..newthing import helper\n", "no layer"),
        ("pointea.cli.fake", "from ..ops.layout import _check_batch_values\n", "private name"),
        ("pointea.engine.fake", "from ..datasets._base import fingerprint\n", "private module"),
        (
            "pointea.tasks.fake",
            "if TYPE_CHECKING:\n    pass\nelse:\n    from ..engine.config import TrainConfig\n",
            "upwards",
        ),
        (
            "pointea.tasks.fake",
            "if TYPE_CHECKING:\n    from ..engine.config import _x\n",
            "private name",
        ),
    ],
)
def test_a_new_breaking_import_is_caught(module, source, rule):
    found = check_source(module, source)
    assert len(found) == 1 and rule in found[0][1], found


@pytest.mark.parametrize(
    "module, source",
    [
        ("pointea.engine.fake", "from ..nn import LBR\nfrom .. import __version__\n"),
        ("pointea.cli.fake", "from ..inference import Predictor\nimport pointea.io\n"),
        ("pointea.serialization", "from .files import atomic_write\n"),  # listed sideways
        ("pointea.ops.fake", "from .. import pure_sampling\nfrom .layout import layout_of\n"),
        ("pointea.datasets.synthetic.fake", "from .._base import fingerprint\n"),
        ("pointea.engine.loops", "from ..inference.blocks import block_vote_logits\n"),
        ("pointea.tasks.fake", "if TYPE_CHECKING:\n    from ..engine.config import TrainConfig\n"),
    ],
)
def test_allowed_imports_pass(module, source):
    assert check_source(module, source) == []


def test_rules_are_read_from_the_document():
    assert RULES.layer["cli"] > RULES.layer["inference"] > RULES.layer["engine"]
    assert RULES.layer["engine"] > RULES.layer["tasks"] > RULES.layer["datasets"]
    assert RULES.layer["datasets"] == RULES.layer["models"] > RULES.layer["nn"]
    assert RULES.layer["nn"] > RULES.layer["ops"] > RULES.layer["errors"]
    assert ("serialization", "files") in RULES.sideways
    assert ("pointea.engine.loops", "pointea.inference.blocks") in RULES.exceptions
