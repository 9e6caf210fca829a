"""A regular install (Colab's `pip install /content/gaplab`) carries the whole package and finds its book.

Every test and the book build use the editable install, which reads files straight from lib/; these
tests build the wheel from the committed tree and look inside it. `make test-wheel` (in CI) installs it
into a fresh environment and runs a chapter there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gaplab import paths
from gaplab.runs import code_version
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _tracked(*args) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the repository's files (so no build/ lands in the clone)."""
    src = tmp_path_factory.mktemp("src")
    for rel in _tracked("lib", "pyproject.toml", "README.md", "LICENSE"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes((ROOT / rel).read_bytes())
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), "."],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("gaplab-*.whl")
    return found


def test_the_wheel_carries_every_file_of_the_package_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("gaplab/")}
    package = {
        rel.removeprefix("lib/")
        for rel in _tracked("lib/gaplab")
        if "__pycache__" not in rel
    }
    assert package - shipped == set(), "files of lib/gaplab missing from the wheel"
    assert shipped - package == set(), "files in the wheel that lib/gaplab lacks"
    assert "gaplab/py.typed" in shipped
    assert any(n.startswith("gaplab/training/model_configs/") for n in shipped)
    assert not [n for n in names if n.startswith(("tests/", "notebooks", "book/"))]


def test_the_installed_package_has_the_editable_code_version(wheel, tmp_path):
    """The run cache's key and the course archives' version hash the package's files: an install
    that lacks one (as the model configs once were) would train everything again and refuse archives."""
    zipfile.ZipFile(wheel).extractall(tmp_path)
    probe = (
        "import gaplab, gaplab.runs as r; from gaplab.training.models import MAD_PRESETS; "
        "print(gaplab.__file__); print(r.code_version()); print(sorted(MAD_PRESETS))"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert Path(out[0]).is_relative_to(tmp_path), "imported the checkout, not the wheel"
    assert out[1] == code_version()
    assert "mad-cnn" in out[2]


def test_missing_model_configs_are_named_not_hashed(monkeypatch, tmp_path):
    from gaplab import runs

    (tmp_path / "model_configs").mkdir()
    monkeypatch.setattr(runs.versions, "_PKG", tmp_path)
    runs.code_version.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="model configs are missing"):
            runs.code_version()
    finally:
        monkeypatch.undo()
        runs.code_version.cache_clear()


def _no_book_nearby(monkeypatch, tmp_path, source=None):
    """Pretend gaplab is installed in site-packages (not in a clone), from ``source``."""
    monkeypatch.delenv("GAPLAB_BOOK", raising=False)
    monkeypatch.delenv("GAPLAB_DATA", raising=False)
    fake = tmp_path / "site-packages" / "gaplab" / "paths.py"
    monkeypatch.setattr(paths, "__file__", str(fake))
    monkeypatch.setattr(paths, "_installed_from", lambda: source)


def _book(path: Path) -> Path:
    (path / "notebooks").mkdir(parents=True)
    (path / "data").mkdir()
    (path / "_toc.yml").write_text("root: book/intro\n")
    return path


def test_an_installed_package_finds_the_clone_pip_installed_it_from(
    monkeypatch, tmp_path
):
    clone = _book(tmp_path / "content" / "gaplab")
    _no_book_nearby(monkeypatch, tmp_path, source=clone)
    assert paths.book_root() == clone
    assert paths.data_dir() == clone / "data"


def test_gaplab_book_wins_and_a_missing_book_is_named(monkeypatch, tmp_path):
    _no_book_nearby(monkeypatch, tmp_path)
    with pytest.raises(paths.BookNotFoundError, match="GAPLAB_BOOK") as err:
        paths.book_root()
    assert f"{tmp_path} (the clone holding this package)" in str(err.value)
    mine = _book(tmp_path / "mine")
    monkeypatch.setenv("GAPLAB_BOOK", str(mine))
    assert paths.book_root() == mine


def test_record_refuses_to_run_without_chapters(monkeypatch, tmp_path, capsys):
    from gaplab.__main__ import main

    empty = _book(tmp_path / "empty")
    _no_book_nearby(monkeypatch, tmp_path, source=empty)
    assert main(["record", "--profile", "smoke"]) == 2
    assert "no chapters found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"url": "file:///content/gaplab", "dir_info": {}}', Path("/content/gaplab")),
        ('{"url": "file:///a%20b/gaplab", "dir_info": {}}', Path("/a b/gaplab")),
        ('{"url": "https://example.org/gaplab.whl", "archive_info": {}}', None),
        ("not json", None),
        (None, None),
    ],
)
def test_the_folder_pip_recorded(monkeypatch, text, expected):
    class Dist:
        def read_text(self, name):
            assert name == "direct_url.json"
            return text

    monkeypatch.setattr(paths.metadata, "distribution", lambda name: Dist())
    assert paths._installed_from() == expected


# --------------------------------------------------------------------------------------
# scripts/check_dist.py, which `make test-wheel` runs on the built sdist and wheel


def test_check_dist_passes_the_wheel_and_reads_its_metadata(wheel, capsys):
    check = load_script("scripts", "check_dist")
    assert check.check_wheel(ROOT, wheel) == []
    line = capsys.readouterr().out
    assert "extras ['book', 'charts', 'models', 'realdata', 'test']" in line
    assert "core ['numpy', 'platformdirs', 'scikit-learn', 'scipy']" in line


def test_check_dist_names_a_lost_config_a_stray_file_and_a_missing_command(
    wheel, tmp_path
):
    check = load_script("scripts", "check_dist")
    broken = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w") as out:
        for item in src.infolist():
            if item.filename.endswith(("mad-cnn.json", "entry_points.txt")):
                continue
            out.writestr(item, src.read(item))
        out.writestr("tests/test_x.py", "")
    problems = check.check_wheel(ROOT, broken)
    assert "wheel lacks gaplab/training/model_configs/mad-cnn.json" in problems
    assert "wheel carries tests/test_x.py" in problems
    assert any(p.startswith("entry_points.txt lacks") for p in problems), problems
