"""The repository's address has one source (_config.yml) and is written everywhere else from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
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
    assert '"https://github.com/some-teacher/gap-course", "/content/gaplab"' in cell
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


def _fake_tools(tmp_path: Path, monkeypatch, *, git_rc=0, pip_rc=0) -> Path:
    """A `git` on PATH and a `python` as sys.executable that log their arguments and exit
    with the given codes (git clone makes its target), so the Colab cell runs here."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name, rc, make in (
        ("git", git_rc, 'mkdir -p "${@: -1}"'),
        ("python", pip_rc, ""),
    ):
        tool = bin_dir / name
        body = make if rc == 0 else ""
        tool.write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\n{body}\nexit {rc}\n')
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.delenv("GAPLAB_BOOK", raising=False)
    return log


def _run_cell(tmp_path: Path, *, on_colab: bool, monkeypatch) -> Path:
    book = tmp_path / "book"
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(address.colab_cell("https://github.com/a/b", str(book)), {})
    return book


def test_the_colab_cell_does_nothing_off_colab(tmp_path, monkeypatch):
    log = _fake_tools(tmp_path, monkeypatch)
    book = _run_cell(tmp_path, on_colab=False, monkeypatch=monkeypatch)
    assert not log.exists() and not book.exists()
    assert "GAPLAB_BOOK" not in os.environ


def test_the_colab_cell_clones_once_installs_and_points_gaplab_at_the_clone(
    tmp_path, monkeypatch
):
    log = _fake_tools(tmp_path, monkeypatch)
    book = _run_cell(tmp_path, on_colab=True, monkeypatch=monkeypatch)
    _run_cell(tmp_path, on_colab=True, monkeypatch=monkeypatch)  # a re-run
    assert log.read_text().splitlines() == [
        f"git clone -q --depth 1 https://github.com/a/b {book}",
        f"python -m pip install -q {book}[models,charts]",
        f"python -m pip install -q {book}[models,charts]",
    ]
    assert os.environ["GAPLAB_BOOK"] == str(book)


@pytest.mark.parametrize("failing", ["git", "pip"])
def test_the_colab_cell_stops_loudly_when_clone_or_install_fails(
    tmp_path, monkeypatch, failing
):
    rcs = {"git_rc": 128} if failing == "git" else {"pip_rc": 1}
    log = _fake_tools(tmp_path, monkeypatch, **rcs)
    with pytest.raises(subprocess.CalledProcessError):
        _run_cell(tmp_path, on_colab=True, monkeypatch=monkeypatch)
    assert len(log.read_text().splitlines()) == (1 if failing == "git" else 2)
    assert "GAPLAB_BOOK" not in os.environ


def test_the_colab_cell_is_short_and_as_ruff_formats_it():
    # `make lint` formats and lints the chapters: a cell it would rewrite could never agree
    # with the generated one
    cell = address.colab_cell(address.address(ROOT)[0])
    assert len(cell.splitlines()) <= 10
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed beside this Python")
    for command in (["format", "--check"], ["check"]):
        done = subprocess.run(
            [str(ruff), *command, "--stdin-filename", "notebooks_py/cell.py", "-"],
            input=cell,
            text=True,
            capture_output=True,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stdout + done.stderr
