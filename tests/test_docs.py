"""The repository's text: no words about how it was made, links that resolve, and the
license, changelog and citation files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pointea_testing import REPO_ROOT as ROOT

#: where words about the project's own process must not appear
TEXT_ROOTS = ["README.md", "CHANGELOG.md", "docs", "pointea", "scripts", "tests", "notebooks"]
SUFFIXES = {".md", ".py", ".sh", ".toml", ".ipynb", ".cff", ".txt"}

#: written with character classes so that this file passes its own check
_PROCESS = re.compile(
    r"i[s]sue ?#|\bi[s]sue \d|th[i]s r[o]und|l[a]st r[o]und|r[o]und (one|two|three)"
    r"|th[i]s m[a]chine|n[o]t m[e]t",
    re.IGNORECASE,
)


def _text_files() -> list[Path]:
    files: list[Path] = []
    for name in TEXT_ROOTS:
        root = ROOT / name
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(
                p
                for p in root.rglob("*")
                if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
            )
    return files


def _markdown() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_no_process_words():
    found = []
    for path in _text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if _PROCESS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_the_process_word_check_can_fail():
    def joined(*parts: str) -> str:  # the phrases never stand whole in this file
        return " ".join(parts)

    assert _PROCESS.search(joined("as measured in this", "round"))
    assert _PROCESS.search(joined("see", "Iss" + "ue", "#12"))
    assert _PROCESS.search(joined("the file of", "iss" + "ue", "13"))
    assert _PROCESS.search(joined("on this", "mach" + "ine"))
    assert not _PROCESS.search("a round trip of the file")


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", _markdown(), ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = []
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_license_changelog_and_citation():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "MIT" in (ROOT / "pyproject.toml").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog") and "## [Unreleased]" in changelog
    cff = (ROOT / "CITATION.cff").read_text()
    keys = dict(line.split(":", 1) for line in cff.splitlines() if re.match(r"[a-z-]+:", line))
    assert keys["cff-version"].strip() == "1.2.0"
    assert keys["license"].strip() == "MIT"
    for arxiv in ("2012.09688", "2105.02358"):  # PCT and external attention
        assert arxiv in cff


def test_readme_keeps_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/demo.sh\n" in readme and "bash scripts/test.sh\n" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "bash scripts/test.sh"


def test_readme_lists_every_console_script():
    readme = (ROOT / "README.md").read_text()
    scripts = re.search(
        r"\[project\.scripts\]\n(.*?)\n\n", (ROOT / "pyproject.toml").read_text(), re.S
    )
    names = [line.split("=")[0].strip() for line in scripts.group(1).splitlines()]
    assert names and all(f"`{name}" in readme for name in names), names


def test_recipe_table_in_the_docs_is_the_generated_one():
    from pointea.engine.recipe_text import recipe_markdown

    page = (ROOT / "docs" / "TRAINING.md").read_text()
    found = re.search(r"<!-- recipe table: [^>]*-->\n(.*?)<!-- end recipe table -->", page, re.S)
    assert found and found.group(1) == recipe_markdown()


def test_recipe_epilog_follows_the_recipe_table(monkeypatch):
    from pointea.engine import recipe_text
    from pointea.tasks import ShapeNetPart

    assert "label smoothing 0.2" in recipe_text.recipe_epilog()
    monkeypatch.setattr(ShapeNetPart, "recipe", {**ShapeNetPart.recipe, "label_smoothing": 0.1})
    assert "label smoothing 0.1" in recipe_text.recipe_epilog()


@pytest.mark.parametrize("task", ["modelnet40", "shapenetpart", "s3dis"])
def test_training_help_shows_the_generated_recipe_lines(task):
    from pointea.cli.train import build_parser
    from pointea.engine.recipe_text import recipe_epilog

    assert recipe_epilog().replace("%%", "%") in build_parser(task).format_help()
