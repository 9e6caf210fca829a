"""The repository's address has one source (_config.yml) and is written everywhere else from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
address = load_script("scripts", "repo_address")
PLACES = ["_config.yml", "CITATION.cff", "README.md", "book/course_guide.md"]


def _copy(tmp_path: Path, chapters=("mad_training", "gap_geometry")) -> Path:
    for rel in PLACES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "notebooks_py").mkdir()
    for stem in chapters:
        shutil.copy(ROOT / "notebooks_py" / f"{stem}.py", tmp_path / "notebooks_py")
    return tmp_path


def _fork(root: Path, url: str, branch: str = "main") -> None:
    config = root / "_config.yml"
    text = config.read_text()
    old_url, old_branch = address.address(root)
    text = text.replace(f"url: {old_url}", f"url: {url}")
    text = text.replace(f"branch: {old_branch}", f"branch: {branch}")
    config.write_text(text)


def test_the_repository_agrees_with_its_config():
    assert address.sync(ROOT, check=True) == []


def test_a_fork_edits_one_place_and_the_rest_follows(tmp_path):
    root = _copy(tmp_path)
    old_url, _ = address.address(root)
    _fork(root, "https://github.com/some-teacher/gap-course", "spring")
    differ = address.sync(root, check=True)
    assert set(differ) == {
        "CITATION.cff",
        "README.md",
        "book/course_guide.md",
        "notebooks_py/gap_geometry.py",
        "notebooks_py/mad_training.py",
    }
    assert address.main(["--check", str(root)]) == 1
    assert address.main([str(root)]) == 0
    assert address.sync(root, check=True) == []
    for rel in PLACES[1:]:
        assert old_url not in (root / rel).read_text(), rel
    cell = (root / "notebooks_py" / "mad_training.py").read_text()
    assert '"https://github.com/some-teacher/gap-course"' in cell
    guide = (root / "book" / "course_guide.md").read_text()
    assert (
        "https://colab.research.google.com/github/some-teacher/gap-course/blob/spring/"
        "notebooks/student/mad_training.ipynb"
    ) in guide


def test_a_place_edited_away_is_reported_not_skipped(tmp_path):
    root = _copy(tmp_path)
    cff = root / "CITATION.cff"
    cff.write_text(
        "\n".join(
            line
            for line in cff.read_text().splitlines()
            if not line.startswith("repository-code")
        )
    )
    assert address.sync(root, check=True) == [
        "CITATION.cff (the address's place was not found)"
    ]
    assert address.main([str(root)]) == 1


@pytest.mark.parametrize(
    "url",
    ["https://gitlab.com/a/b", "git@github.com:a/b.git", "", "https://github.com/a"],
)
def test_an_address_colab_cannot_open_is_refused(tmp_path, url):
    root = _copy(tmp_path)
    _fork(root, url or "''")
    with pytest.raises(SystemExit, match="repository.url"):
        address.sync(root, check=True)
