"""The teacher's commands say what they mean: runs are named by chapter beside their
key, printed advice works when copied, a refused import and a rehearsal leave nothing
behind, ``cache where`` says where new runs go, and the student command documents
itself.

Cache entries here are written by hand (a few bytes with a whole ``meta.json``): the
commands only look at the files, so nothing trains except where a training notice is the
point."""

from __future__ import annotations

import argparse
import io
import os
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import nbformat
import pytest

from gaplab import runs
from gaplab.__main__ import main as gaplab_main
from gaplab.book import catalogue
from gaplab.cli import runs as cache_cli
from gaplab.runs import archive, store
from gaplab.teach import student
from tests.test_run_cache import _mock_read_only

TINY = dict(steps=4, eval_every=2)


def _entry(cache: Path, config, *, version: str | None = None) -> str:
    """A whole cache entry for ``config`` without training it; its key."""
    key = runs.run_key(config)
    folder = cache / key
    folder.mkdir(parents=True)
    (folder / store.FINAL).write_bytes(b"a stand-in for final.pt")
    store.write_complete_meta(
        folder,
        key=key,
        kind="mad",
        config=config.to_dict(),
        code_version=version or runs.code_version(),
        seconds=1.0,
    )
    return key


def _chapter_run():
    [run] = catalogue.book_runs("smoke", ("mad_training",))
    return run


def _cache(*argv) -> int:
    return gaplab_main(["cache", *argv])


def _parses(advice: str) -> argparse.Namespace:
    """``advice`` (a ``python -m gaplab cache ...`` line) read by the real parser, as a
    user who pastes it would have it read."""
    words = shlex.split(advice)
    assert words[:3] == ["python", "-m", "gaplab"], advice
    parser = argparse.ArgumentParser(prog="python -m gaplab", exit_on_error=False)
    cache_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(words[3:])


# --- runs named by chapter and label --------------------------------------------------


def test_a_training_run_is_announced_with_its_label_beside_its_key(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    config = runs.mad_config("smoke", k=4, **TINY)
    key = runs.run_key(runs.resolve_glyphs(config))
    runs.get_or_train(config, progress=False)
    said = capsys.readouterr().err
    assert f"MAD k=4 seed 0, 4 steps (run {key}) is not in the cache" in said
    other = runs.mad_config("smoke", k=3, temperature=10.0, **TINY)
    runs.get_or_train(other, progress=False, label="mad_training: frozen")
    said = capsys.readouterr().err
    assert "mad_training: frozen (run " in said and "training it in" in said


def test_a_set_of_runs_names_each_by_the_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    configs = {(1, 0): runs.mad_config("smoke", k=1, **TINY)}
    runs.get_or_train_all(configs, desc="imbalance runs", progress=False)
    assert "MAD k=1 seed 0, 4 steps [imbalance runs (1, 0)] (run" in (
        capsys.readouterr().err
    )


def test_describe_says_what_sets_a_run_apart():
    text = runs.describe(
        runs.mad_config(
            "smoke", k=3, seed=2, temperature=100.0, embed_dim=32, align_init=True
        )
    )
    assert text.startswith("MAD k=3 seed 2, ")
    for part in ("logit scale 100 frozen", "32 dimensions", "gap closed"):
        assert part in text, text


def test_a_book_run_is_trained_under_its_chapter_and_name(monkeypatch):
    seen = {}
    monkeypatch.setattr(
        runs, "get_or_train", lambda config, **kw: seen.update(kw) or "trained"
    )
    assert catalogue.train_book_run(_chapter_run(), progress=False) == "trained"
    assert seen["label"] == "mad_training: k=2 seed 0"


def test_prepare_and_list_name_runs_by_chapter_beside_the_key(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    run = _chapter_run()
    _entry(tmp_path, run.config)
    own = _entry(tmp_path, runs.mad_config("smoke", k=4, **TINY))
    assert _cache("prepare", "--profile", "smoke", "--chapter", "mad_training") == 0
    assert f"mad_training: k=2 seed 0 ({run.key}) is cached" in capsys.readouterr().out
    assert _cache("list") == 0
    lines = capsys.readouterr().out.splitlines()
    [listed] = [line for line in lines if run.key in line]
    # most runs serve several chapters; those that call it alike share one name
    assert " ok       mad_training, object_bias, " in listed
    assert "models_compared: k=2 seed 0; contrastive_gap: loss CLIP" in listed
    # a run no chapter lists is described from the configuration its meta.json keeps
    [mine] = [line for line in lines if own in line]
    assert mine.rstrip().endswith("MAD k=4 seed 0, 4 steps")


def test_export_and_import_name_the_runs_they_carry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "cache"))
    run = _chapter_run()
    _entry(tmp_path / "cache", run.config)
    tar = tmp_path / "c.tar"
    argv = ["--profile", "smoke", "--chapter", "mad_training", "--out", str(tar)]
    assert _cache("export", *argv) == 0
    assert f"{run.key}  mad_training: k=2 seed 0" in capsys.readouterr().out
    assert _cache("import", str(tar), "--into", str(tmp_path / "student")) == 0
    assert f"{run.key}  mad_training: k=2 seed 0" in capsys.readouterr().out


# --- advice that works when copied ----------------------------------------------------


def test_export_advice_keeps_the_chapters_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    with pytest.raises(archive.ArchiveError) as err:
        cache_cli.export("smoke", tmp_path / "x.tar", ["mad_training", "object_bias"])
    advice = str(err.value).split("Train them first: ")[1]
    assert "--chapter mad_training" in advice
    args = _parses(advice)
    assert args.cache_command == "prepare" and args.profile == "smoke"
    assert args.chapter == ["mad_training", "object_bias"]


def test_export_advice_for_every_chapter_needs_no_chapter_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    with pytest.raises(archive.ArchiveError) as err:
        cache_cli.export("smoke", tmp_path / "x.tar")
    args = _parses(str(err.value).split("Train them first: ")[1])
    assert args.chapter is None and args.profile == "smoke"


def test_the_command_line_prints_the_export_advice_with_its_chapter(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    argv = ["--profile", "smoke", "--chapter", "object_bias", "--out", "x.tar"]
    assert _cache("export", *argv) == 2
    advice = capsys.readouterr().err.split("Train them first: ")[1].strip()
    assert advice.endswith("--chapter object_bias"), advice


def test_refusals_of_an_import_say_how_to_export_in_full(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "cache"))
    _entry(tmp_path / "cache", _chapter_run().config, version="0" * 16)
    tar = tmp_path / "old runs.tar"
    cache_cli.export("smoke", tar, ["mad_training"])
    with pytest.raises(archive.ArchiveError, match="another version") as err:
        cache_cli.import_archive(tar, tmp_path / "student")
    args = _parses(str(err.value).split("the students use: ")[1])
    assert (args.cache_command, args.profile, args.chapter, args.out) == (
        "export",
        "smoke",
        ["mad_training"],
        str(tar),
    )
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w"):
        pass
    with pytest.raises(archive.ArchiveError, match="not a gaplab run archive") as err:
        cache_cli.import_archive(plain, tmp_path / "student")
    args = _parses(str(err.value).split("make one with: ")[1])
    assert args.cache_command == "export" and args.out


# --- a refused import leaves nothing behind -------------------------------------------


def _not_an_archive(tmp_path: Path) -> Path:
    bad = tmp_path / "notes.tar"
    with tarfile.open(bad, "w"):
        pass
    return bad


def test_a_refused_import_removes_the_folders_it_made(tmp_path):
    into = tmp_path / "course" / "runs"
    with pytest.raises(archive.ArchiveError):
        cache_cli.import_archive(_not_an_archive(tmp_path), into)
    assert not (tmp_path / "course").exists()


def test_a_refused_import_keeps_folders_that_were_there(tmp_path):
    there = tmp_path / "shared"
    there.mkdir()
    with pytest.raises(archive.ArchiveError):
        cache_cli.import_archive(_not_an_archive(tmp_path), there / "new" / "runs")
    assert there.is_dir() and not (there / "new").exists()
    with pytest.raises(archive.ArchiveError):
        cache_cli.import_archive(_not_an_archive(tmp_path), there)
    assert there.is_dir()


def test_a_damaged_archive_refused_from_the_command_line_leaves_no_folder(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "cache"))
    _entry(tmp_path / "cache", _chapter_run().config)
    tar = tmp_path / "c.tar"
    cache_cli.export("smoke", tar, ["mad_training"])
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(tar) as a, tarfile.open(damaged, "w") as b:
        for m in a.getmembers():
            data = a.extractfile(m).read() if m.isfile() else None
            if m.name.endswith(store.FINAL):
                data = data[:-1] + bytes([data[-1] ^ 1])
            b.addfile(m, None if data is None else io.BytesIO(data))
    into = tmp_path / "student"
    assert _cache("import", str(damaged), "--into", str(into)) == 2
    assert not into.exists()


# --- where new runs go ----------------------------------------------------------------


def test_where_names_the_directory_new_runs_go_to(tmp_path, monkeypatch, capsys):
    course, personal = tmp_path / "course", tmp_path / "personal"
    monkeypatch.setenv("GAPLAB_CACHE", f"{course}{os.pathsep}{personal}")
    _mock_read_only(monkeypatch, course)
    assert _cache("where") == 0
    said = capsys.readouterr().out
    assert f"new runs are written to {personal}\n" in said
    # a read-only course folder before a writable one is how a class works: no advice
    assert "GAPLAB_CACHE" not in said and "writable directory" not in said
    assert f"{course}  [read-only: the file system is read-only (mocked)]" in said


def test_where_advises_only_when_nothing_can_be_written(tmp_path, monkeypatch, capsys):
    course = tmp_path / "course"
    monkeypatch.setenv("GAPLAB_CACHE", str(course))
    _mock_read_only(monkeypatch, course)
    assert _cache("where") == 0
    said = capsys.readouterr().out
    assert "new runs are written to" not in said
    assert "no directory can be written" in said and "GAPLAB_CACHE" in said


def test_a_read_only_location_gives_its_reason_without_a_remedy(tmp_path, monkeypatch):
    import errno
    import tempfile

    def refuse(**kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert store._probe_writable(tmp_path) == "the file system is read-only"


# --- the student command --------------------------------------------------------------


def test_student_help_names_the_command_people_type():
    out = subprocess.run(
        [sys.executable, "-m", "gaplab.teach.student", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m gaplab.teach.student "), out.stdout


def test_every_student_option_is_documented(monkeypatch):
    seen = []

    def capture(self, args=None, namespace=None):
        seen.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        student.main([])
    [parser] = seen
    undocumented = [a.dest for a in parser._actions if not a.help]
    assert undocumented == []


# --- rehearsals clean up after themselves ---------------------------------------------


@pytest.fixture
def rehearsal_tmp(tmp_path, monkeypatch):
    """TMPDIR for this test alone, so that what a rehearsal leaves can be seen."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("gaplab-rehearsal-*"))


def _fake_papermill(monkeypatch, fail: bool):
    import papermill

    ran = []

    def execute(src, dst, **kwargs):
        ran.append(Path(src))
        if fail:
            raise RuntimeError("a cell failed")
        nbformat.write(nbformat.read(src, as_version=4), dst)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    return ran


def test_a_rehearsal_removes_its_folder_when_it_succeeds(rehearsal_tmp, monkeypatch):
    ran = _fake_papermill(monkeypatch, fail=False)
    said = student.rehearse("gap_geometry")
    assert "gap_geometry-ex1" in said
    # it did work in the temporary folder, which is gone again
    assert ran and ran[0].parent.name.startswith("gaplab-rehearsal-")
    assert ran[0].parent.parent == rehearsal_tmp
    assert _left(rehearsal_tmp) == []


def test_a_rehearsal_removes_its_folder_when_it_fails(rehearsal_tmp, monkeypatch):
    ran = _fake_papermill(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="a cell failed"):
        student.rehearse("gap_geometry")
    assert ran and _left(rehearsal_tmp) == []


def test_a_rehearsal_removes_its_folder_when_it_refuses(rehearsal_tmp, monkeypatch):
    ran = _fake_papermill(monkeypatch, fail=False)

    def no_worked_answer(nb):
        raise ValueError("exercise gap_geometry-ex1 has no worked answer to rehearse")

    monkeypatch.setattr(student, "rehearsal_notebook", no_worked_answer)
    with pytest.raises(ValueError, match="no worked answer"):
        student.rehearse("gap_geometry")
    with pytest.raises(FileNotFoundError):
        student.rehearse("no_such_chapter")
    assert ran == [] and _left(rehearsal_tmp) == []


def test_a_rehearsal_keeps_a_workdir_it_was_given(tmp_path, monkeypatch):
    _fake_papermill(monkeypatch, fail=False)
    student.rehearse("gap_geometry", workdir=tmp_path)
    assert (tmp_path / "gap_geometry.executed.ipynb").is_file()
