"""The run cache where the book is really used: a search path with a read-only course cache, named errors for
unusable locations, archives for a class (round trip, tampering, foreign archives, interruptions, two importers at
once), pruning, a full disk and a GPU out of memory."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from gaplab import runs
from gaplab.book import catalogue
from gaplab.cli import runs as cache_cli
from gaplab.runs import archive, store
from gaplab.storage import CacheWarning, StorageError, atomic_save
from gaplab.training.train import train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(steps=4, eval_every=2)


def _no_training(*args, **kwargs):
    raise AssertionError("this must load from the cache, not train")


@contextmanager
def read_only(path: Path):
    """``path`` made read-only for real: permission bits for a normal user; for root (whom permission bits do not
    stop) a read-only bind mount, skipped where mounting is not allowed."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    ok = (
        subprocess.run(
            ["mount", "--bind", str(path), str(path)], capture_output=True
        ).returncode
        == 0
    )
    if (
        ok
        and subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(path)], capture_output=True
        ).returncode
        != 0
    ):
        subprocess.run(["umount", str(path)], capture_output=True)
        ok = False
    if not ok:
        pytest.skip(
            "cannot make a read-only mount here (the mocked read-only tests cover the logic)"
        )
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _mock_read_only(monkeypatch, *paths):
    real = store._probe_writable
    blocked = {Path(p) for p in paths}
    monkeypatch.setattr(
        store,
        "_probe_writable",
        lambda p: (
            "the file system is read-only (mocked)" if Path(p) in blocked else real(p)
        ),
    )


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A cache holding the smoke run of the MAD chapter, and an archive exported from it."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("teacher")
    mp.setenv("GAPLAB_CACHE", str(cache))
    [run] = catalogue.book_runs("smoke", ("mad_training",))
    result = runs.get_or_train(run.config, progress=False)
    tar = tmp_path_factory.mktemp("archive") / "course-runs.tar"
    manifest = cache_cli.export("smoke", tar, ["mad_training"])
    mp.undo()
    return {
        "cache": cache,
        "run": run,
        "result": result,
        "tar": tar,
        "manifest": manifest,
    }


# --- the search path -------------------------------------------------------------------------------------------


def test_search_path_loads_from_a_read_only_course_cache_and_trains_misses_into_the_personal_one(
    teacher, tmp_path, monkeypatch, capsys
):
    course, personal = tmp_path / "course", tmp_path / "personal"
    shutil.copytree(teacher["cache"], course)
    monkeypatch.setenv("GAPLAB_CACHE", f"{course}{os.pathsep}{personal}")
    other = runs.mad_config("smoke", k=4, **TINY)
    with read_only(course):
        locs = store.locations()
        assert [loc.writable for loc in locs] == [False, True]
        with monkeypatch.context() as m:
            m.setattr(runs.mad, "train", _no_training)
            hit = runs.get_or_train(teacher["run"].config, progress=False)
        assert hit.history == teacher["result"].history
        assert np.array_equal(hit.eval_image, teacher["result"].eval_image)
        capsys.readouterr()
        miss = runs.get_or_train(other, progress=False)
        assert f"training it in {personal}" in capsys.readouterr().err
    assert (personal / runs.run_key(other) / "final.pt").exists()
    assert not (course / runs.run_key(other)).exists()
    assert store.entry_problem(personal / runs.run_key(other)) is None
    assert runs.get_or_train(other, progress=False).history == miss.history


def test_no_writable_directory_still_trains_and_says_why_nothing_was_stored(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    _mock_read_only(monkeypatch, tmp_path)
    with pytest.warns(
        CacheWarning, match=r"trained but not stored: no writable run cache .*read-only"
    ):
        result = runs.get_or_train(runs.mad_config("smoke", **TINY), progress=False)
    assert result.history[-1]["step"] == 4
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_is_the_first_writable_directory(tmp_path, monkeypatch):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    monkeypatch.setenv(
        "GAPLAB_CACHE", os.pathsep.join(map(str, (a, b, c))) + os.pathsep
    )
    _mock_read_only(monkeypatch, a)
    assert store.cache_paths() == [a, b, c]  # the empty trailing entry is ignored
    assert runs.cache_dir() == b


# --- named errors, before any model is built -------------------------------------------------------------------


def _bad_locations(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {
        "a file": (afile, "it is a file"),
        "under a file": (afile / "runs", "is a file, not a directory"),
    }


@pytest.mark.parametrize("case", ["a file", "under a file"])
def test_unusable_location_is_named_before_any_model_is_built(
    case, tmp_path, monkeypatch
):
    path, problem = _bad_locations(tmp_path)[case]
    monkeypatch.setenv("GAPLAB_CACHE", str(path))
    monkeypatch.setattr(runs.mad, "build_model", _no_training)
    monkeypatch.setattr(runs.mad, "train", _no_training)
    t = time.perf_counter()
    with pytest.raises(runs.CacheLocationError) as info:
        runs.get_or_train(runs.mad_config("smoke", **TINY), progress=False)
    assert time.perf_counter() - t < 1.0
    msg = str(info.value)
    assert (
        "GAPLAB_CACHE" in msg
        and str(path) in msg
        and problem in msg
        and "Point GAPLAB_CACHE" in msg
    )


def test_missing_directory_whose_parent_cannot_be_made(tmp_path, monkeypatch):
    parent = tmp_path / "share"
    parent.mkdir()
    target = parent / "course" / "runs"
    monkeypatch.setenv("GAPLAB_CACHE", str(target))
    real_mkdir = Path.mkdir

    def refuse(self, *a, **k):
        if str(self).startswith(str(parent)):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(
        runs.CacheLocationError,
        match=r"does not exist and cannot be created \(permission denied",
    ):
        store.locations()


def test_missing_directory_under_a_real_read_only_parent(tmp_path, monkeypatch):
    parent = tmp_path / "share"
    parent.mkdir()
    monkeypatch.setenv("GAPLAB_CACHE", str(parent / "runs"))
    with read_only(parent):
        with pytest.raises(
            runs.CacheLocationError, match="does not exist and cannot be created"
        ):
            store.locations()


def test_unreadable_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode)
    )
    with pytest.raises(runs.CacheLocationError, match="no permission to read it"):
        store.locations()


def test_default_location_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("GAPLAB_CACHE", raising=False)
    monkeypatch.setattr(store, "_default_dir", lambda: tmp_path / "default")
    assert store.cache_paths() == [tmp_path / "default"]
    assert store.locations()[0].writable and (tmp_path / "default").is_dir()


# --- damaged entries -------------------------------------------------------------------------------------------


def test_truncated_entry_is_retrained_in_a_writable_cache(
    teacher, tmp_path, monkeypatch
):
    cache = tmp_path / "c"
    shutil.copytree(teacher["cache"], cache)
    monkeypatch.setenv("GAPLAB_CACHE", str(cache))
    final = cache / teacher["run"].key / "final.pt"
    final.write_bytes(final.read_bytes()[:1000])
    assert "truncated" in store.entry_problem(final.parent)
    with pytest.warns(
        CacheWarning, match="could not be read .*truncated.*set aside .*trained again"
    ):
        redone = runs.get_or_train(teacher["run"].config, progress=False)
    assert redone.history == teacher["result"].history
    assert store.entry_problem(final.parent) is None


def test_entry_without_metadata_is_not_trusted(teacher, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    shutil.copytree(teacher["cache"], cache)
    (cache / teacher["run"].key / "meta.json").unlink()  # a copy that stopped half-way
    assert "no readable meta.json" in store.entry_problem(cache / teacher["run"].key)
    monkeypatch.setenv("GAPLAB_CACHE", str(cache))
    with pytest.warns(CacheWarning, match="no readable meta.json"):
        runs.get_or_train(teacher["run"].config, progress=False)


def test_damaged_entry_in_a_read_only_cache_is_skipped_and_trained_elsewhere(
    teacher, tmp_path, monkeypatch
):
    course, personal = tmp_path / "course", tmp_path / "personal"
    shutil.copytree(teacher["cache"], course)
    final = course / teacher["run"].key / "final.pt"
    data = bytearray(final.read_bytes())
    data[-10] ^= 0xFF  # same size, other content
    final.write_bytes(bytes(data))
    monkeypatch.setenv("GAPLAB_CACHE", f"{course}{os.pathsep}{personal}")
    _mock_read_only(monkeypatch, course)
    with pytest.warns(CacheWarning, match="read-only .* SHA-256 .*skipping it"):
        result = runs.get_or_train(teacher["run"].config, progress=False)
    assert result.history == teacher["result"].history
    assert final.exists()  # the course copy is left alone
    assert store.entry_problem(personal / teacher["run"].key) is None


# --- a full disk -----------------------------------------------------------------------------------------------


def _disk_full_after(monkeypatch, n_ok: int):
    """torch.save writes half a file and fails with ENOSPC after ``n_ok`` successful saves."""
    real, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] > n_ok:
            Path(f).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    _disk_full_after(monkeypatch, 1)
    cfg = runs.mad_config("smoke", steps=6, eval_every=2)
    with pytest.warns(
        CacheWarning, match="checkpoint at step 4 not written .*no space left"
    ) as rec:
        train(cfg, tmp_path, device="cpu", progress=False, stop_after=6)
    assert (
        len([w for w in rec if issubclass(w.category, CacheWarning)]) == 1
    )  # said once, not at every step
    # no partial file: the checkpoint and its checksums only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.json", "ckpt.pt"]
    monkeypatch.undo()
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["step"] == 2
    resumed = train(cfg, tmp_path, device="cpu", progress=False)
    fresh = train(cfg, None, device="cpu", progress=False)
    assert resumed.history == fresh.history


def test_full_disk_at_the_final_save_returns_the_run_and_stores_nothing_partial(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    cfg = runs.mad_config("smoke", **TINY)
    _disk_full_after(
        monkeypatch, 2
    )  # the two checkpoints succeed, the final save does not
    with pytest.warns(
        CacheWarning, match="trained but could not be stored .*no space left"
    ):
        result = runs.get_or_train(cfg, progress=False)
    assert result.history[-1]["step"] == 4
    entry = tmp_path / runs.run_key(cfg)
    assert not (entry / "final.pt").exists() and not list(entry.glob(".*tmp"))
    assert store.find_final(runs.run_key(cfg)) is None


def test_atomic_save_failure_names_the_file_and_leaves_the_old_version(
    tmp_path, monkeypatch
):
    target = tmp_path / "x.pt"
    atomic_save({"v": 1}, target)
    _disk_full_after(monkeypatch, 0)
    with pytest.raises(
        StorageError, match=r"could not write .*x\.pt: no space left"
    ) as info:
        atomic_save({"v": 2}, target)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


# --- a GPU out of memory ---------------------------------------------------------------------------------------


def test_out_of_memory_names_the_profile_batch_and_what_to_lower(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB"
        )

    monkeypatch.setattr(runs.mad, "train", oom)
    with pytest.raises(runs.TrainingOutOfMemory) as info:
        runs.get_or_train(runs.mad_config("paper"), progress=False)
    msg = str(info.value)
    assert (
        "profile 'paper'" in msg and "batch size 512" in msg and "profile='cpu'" in msg
    )
    assert "batch_size=" in msg and "Tried to allocate" in msg


# --- archives --------------------------------------------------------------------------------------------------


def test_archive_round_trip(teacher, tmp_path, monkeypatch):
    manifest = teacher["manifest"]
    key = teacher["run"].key
    assert manifest["format"] == archive.FORMAT and manifest["profile"] == "smoke"
    assert list(manifest["entries"]) == [key]
    assert manifest["entries"][key]["chapters"] == ["mad_training"]
    into = tmp_path / "student"
    out = cache_cli.import_archive(teacher["tar"], into)
    assert out["added"] == [key] and out["present"] == []
    assert cache_cli.import_archive(teacher["tar"], into)["present"] == [
        key
    ]  # a second import changes nothing
    monkeypatch.setenv("GAPLAB_CACHE", str(into))
    monkeypatch.setattr(runs.mad, "train", _no_training)
    loaded = runs.get_or_train(teacher["run"].config, progress=False)
    assert loaded.history == teacher["result"].history


def test_export_names_the_runs_that_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    with pytest.raises(
        archive.ArchiveError,
        match=r"not in the run cache .*k=2 seed 0.*cache prepare --profile smoke",
    ):
        cache_cli.export("smoke", tmp_path / "x.tar", ["mad_training"])
    assert not (tmp_path / "x.tar").exists()


def _rewrite(src: Path, dst: Path, change):
    """Copy a tar member by member; ``change(info, data)`` returns the (info, data) to write, or None to drop."""
    with tarfile.open(src) as a, tarfile.open(dst, "w") as b:
        for m in a.getmembers():
            data = a.extractfile(m).read() if m.isfile() else None
            out = change(m, data)
            if out is not None:
                info, data = out
                b.addfile(info, io.BytesIO(data) if data is not None else None)


def _refused(tar, into, match):
    with pytest.raises(archive.ArchiveError, match=match):
        cache_cli.import_archive(tar, into)
    assert not into.exists() or list(into.iterdir()) == []  # nothing half-unpacked


def test_tampered_archive_is_refused_whole(teacher, tmp_path):
    def flip(info, data):
        if info.name.endswith("final.pt"):
            data = bytearray(data)
            data[100] ^= 1
            data = bytes(data)
        return info, data

    bad = tmp_path / "bad.tar"
    _rewrite(teacher["tar"], bad, flip)
    _refused(
        bad, tmp_path / "student", "does not match its SHA-256 .*nothing was imported"
    )


def test_foreign_archives_are_refused(tmp_path):
    into = tmp_path / "student"
    into.mkdir()
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tf:
        tf.add(__file__, arcname="notes.py")
    _refused(plain, into, "not a gaplab run archive")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    _refused(junk, into, "not a readable tar archive")
    _refused(tmp_path / "absent.tar", into, "does not exist")


def _escape(info, data):
    extra = tarfile.TarInfo("gaplab-runs/../../evil.txt")
    extra.size = 4
    return extra, b"evil"


def _symlink(info, data):
    sym = tarfile.TarInfo(info.name)
    sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return sym, None


def _other_version(info, data):
    m = json.loads(data)
    for e in m["entries"].values():
        e["code_version"] = "0" * 16
    data = json.dumps(m).encode()
    info.size = len(data)
    return info, data


@pytest.mark.parametrize(
    "member, change, message",
    [
        ("meta.json", _escape, "unexpected member"),
        ("final.pt", _symlink, "not a plain file"),
        ("manifest.json", _other_version, "another version of gaplab"),
        ("meta.json", lambda info, data: None, "lacks files its manifest lists"),
    ],
)
def test_malformed_archives_are_refused(teacher, tmp_path, member, change, message):
    bad = tmp_path / "bad.tar"
    _rewrite(
        teacher["tar"],
        bad,
        lambda info, data: (
            change(info, data) if info.name.endswith(member) else (info, data)
        ),
    )
    _refused(bad, tmp_path / "student", message)


def test_interrupted_import_leaves_nothing_partial(teacher, tmp_path, monkeypatch):
    into = tmp_path / "student"
    into.mkdir()
    real_open = open
    state = {"writes": 0}

    def interrupting_open(path, mode="r", *a, **k):
        if "w" in mode and ".import-" in str(path):
            state["writes"] += 1
            if state["writes"] == 2:
                raise KeyboardInterrupt
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", interrupting_open)
    with pytest.raises(KeyboardInterrupt):
        cache_cli.import_archive(teacher["tar"], into)
    monkeypatch.undo()
    assert list(into.iterdir()) == []
    # a killed import (no chance to clean up) leaves its folder; loads ignore it and the next import removes it
    dead = into / ".import-999999999-deadbeef"
    (dead / teacher["run"].key).mkdir(parents=True)
    assert cache_cli.import_archive(teacher["tar"], into)["added"] == [
        teacher["run"].key
    ]
    assert sorted(p.name for p in into.iterdir()) == [teacher["run"].key]


def test_two_processes_importing_at_once(teacher, tmp_path):
    into = tmp_path / "shared"
    into.mkdir()
    env = {**os.environ, "GAPLAB_CACHE": str(into)}
    cmd = [sys.executable, "-m", "gaplab", "cache", "import", str(teacher["tar"])]
    procs = [
        subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(p.name for p in into.iterdir()) == [teacher["run"].key]
    assert store.entry_problem(into / teacher["run"].key) is None
    said = " ".join(o for o, _ in outs)
    assert "imported 1 runs" in said


# --- pruning and listing ---------------------------------------------------------------------------------------


def test_prune_removes_other_versions_and_leftovers_only(
    teacher, tmp_path, monkeypatch
):
    cache = tmp_path / "c"
    shutil.copytree(teacher["cache"], cache)
    key = teacher["run"].key
    old = cache / ("a" * 20)
    shutil.copytree(cache / key, old)
    meta = json.loads((old / "meta.json").read_text())
    meta["code_version"] = "0" * 16
    (old / "meta.json").write_text(json.dumps(meta))
    legacy = cache / ("b" * 20)
    legacy.mkdir()
    (legacy / "final.pt").write_bytes(b"x")
    stale = cache / ".import-999999999-0a0b"
    stale.mkdir()
    keep = cache / "notes"  # not an entry: never touched
    keep.mkdir()
    monkeypatch.setenv("GAPLAB_CACHE", str(cache))
    would = cache_cli.prune(dry_run=True)
    assert {Path(r["path"]).name for r in would} == {old.name, legacy.name, stale.name}
    assert old.exists()
    cache_cli.prune()
    assert sorted(p.name for p in cache.iterdir()) == sorted([key, "notes"])


def test_list_says_chapter_profile_and_state(teacher, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    shutil.copytree(teacher["cache"], cache)
    monkeypatch.setenv("GAPLAB_CACHE", str(cache))
    [row] = cache_cli.list_entries()
    assert (
        row["key"] == teacher["run"].key
        and row["state"] == "ok"
        and row["profiles"] == ["smoke"]
    )
    assert (
        "mad_training" in row["chapters"]
        and row["bytes"] > 0
        and row["date"].startswith("20")
    )


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "gaplab", "cache", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line(teacher, tmp_path):
    env = {"GAPLAB_CACHE": str(teacher["cache"])}
    out = _cli("list", env=env)
    assert (
        out.returncode == 0
        and teacher["run"].key in out.stdout
        and "mad_training" in out.stdout
    )
    out = _cli("where", env=env)
    assert str(teacher["cache"]) in out.stdout and "writable" in out.stdout
    tar = tmp_path / "c.tar.gz"
    out = _cli(
        "export",
        "--profile",
        "smoke",
        "--chapter",
        "mad_training",
        "--out",
        str(tar),
        env=env,
    )
    assert out.returncode == 0 and "1 runs" in out.stdout, out.stderr
    student = tmp_path / "student"
    out = _cli(
        "import",
        str(tar),
        "--into",
        str(student),
        env={"GAPLAB_CACHE": str(tmp_path / "x")},
    )
    assert out.returncode == 0 and "imported 1 runs" in out.stdout, out.stderr
    afile = tmp_path / "afile"
    afile.write_text("")
    out = _cli("list", env={"GAPLAB_CACHE": str(afile / "runs")})
    assert (
        out.returncode == 2
        and out.stderr.startswith("error: run cache")
        and "Traceback" not in out.stderr
    )
    out = _cli("import", str(afile), "--into", str(student), env=env)
    assert out.returncode == 2 and "not a readable tar archive" in out.stderr


# --- the catalogue ---------------------------------------------------------------------------------------------


def test_catalogue_covers_every_chapter_that_trains(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "GAPLAB_CACHE", str(tmp_path)
    )  # the frozen arm's key depends on what is cached
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    trains = {
        stem
        for stem in notebooks
        if any(
            s in (ROOT / "notebooks_py" / f"{stem}.py").read_text()
            for s in ("get_or_train", "_runs(", "finetune_experiment", "from_mad(")
        )
    }
    assert trains == set(catalogue.CHAPTERS)
    runs_cpu = catalogue.book_runs("cpu")
    # 35 for the papers' chapters and 7 for the remedies chapter (its plain run is the imbalance grid's); 43 with
    # the frozen fine-tuning arm, known once trained
    assert len({r.key for r in runs_cpu if r.key}) == 35 + 7
    with pytest.raises(ValueError, match="unknown chapters"):
        catalogue.book_runs("cpu", ("gap_geometry",))


def test_listing_never_downloads_mnist(teacher, tmp_path, monkeypatch):
    # the paper profile's glyphs="auto" would fetch MNIST to resolve; listing a cache must not
    import gaplab.data.mad as mad

    def no_download(root):
        raise AssertionError("listing tried to load MNIST")

    monkeypatch.setattr(mad, "load_mnist", no_download)
    monkeypatch.setenv("GAPLAB_CACHE", str(teacher["cache"]))
    assert [r["key"] for r in cache_cli.list_entries()] == [teacher["run"].key]

    def mad_keys(glyphs):
        return {
            r.key
            for r in catalogue.book_runs("paper", glyphs=glyphs)
            if r.key and r.kind == "mad"
        }

    # 3 seeds x 6 k, the colour run, fine-tuning source and learnable arm, 6 temperatures, 2 loss variants,
    # two runs with the gap closed at initialisation, CLIP and CUA at 64 and 32 dimensions (35), and the
    # imbalance grid again with the temperature frozen (18), and the remedies chapter's seven remedies at k = 1 and
    # 4 with 3 seeds (42; its plain runs are the imbalance grid's)
    assert len(mad_keys("procedural")) == 35 + 18 + 42 and not mad_keys(
        "procedural"
    ) & mad_keys("mnist")


def test_trained_runs_write_build_log_lines_with_an_eta(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "cache"))
    log = tmp_path / "progress.log"
    monkeypatch.setenv("GAPLAB_BUILD_LOG", str(log))
    configs = {
        "first": runs.mad_config("smoke", k=1, **TINY),
        "second": runs.mad_config("smoke", k=2, **TINY),
    }
    runs.get_or_train(configs["first"], progress=False)
    first_lines = log.read_text().splitlines()
    assert any("not in the cache; training it" in line for line in first_lines)
    assert any(
        "k=1" in line and "4 steps" in line and "trained in" in line
        for line in first_lines
    )
    log.write_text("")
    runs.get_or_train_all(configs, desc="grid", progress=False)
    lines = [line for line in log.read_text().splitlines() if "grid:" in line]
    # only the run that was missing is announced, as 1 of 1, with nothing left to wait for
    assert (
        len(lines) == 1
        and "second (4 steps) trained in" in lines[0]
        and "1 of 1" in lines[0]
    )
    assert "more to train" not in lines[0]
    log.write_text("")
    runs.get_or_train_all(configs, desc="grid", progress=False)
    assert log.read_text() == ""  # cached runs say nothing


def test_eta_counts_the_runs_still_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "cache"))
    log = tmp_path / "progress.log"
    monkeypatch.setenv("GAPLAB_BUILD_LOG", str(log))
    configs = {k: runs.mad_config("smoke", k=k, **TINY) for k in (0, 3)}
    runs.get_or_train_all(configs, desc="pair", progress=False)
    lines = [line for line in log.read_text().splitlines() if "pair:" in line]
    assert "1 of 2; 1 more to train, about" in lines[0] and lines[1].endswith("2 of 2")


def test_no_build_log_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GAPLAB_BUILD_LOG", raising=False)
    runs.progress_line("nothing to write")  # no file, no error
    monkeypatch.setenv("GAPLAB_BUILD_LOG", str(tmp_path / "missing-dir" / "log"))
    runs.progress_line("an unwritable log is ignored")
