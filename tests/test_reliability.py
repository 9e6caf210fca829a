"""Nothing silently wrong, nothing lost: a real full disk (a small tmpfs), a read-only disk, damaged and
truncated checkpoints, a kill between the finished run's two files, two trainers of one key, leftovers of
killed writers, and a cache that cannot be written. Each case failed on f06c429."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from gaplab import runs
from gaplab.__main__ import main as gaplab_main
from gaplab.cli import runs as cache_cli
from gaplab.runs import archive, store, unpack
from gaplab.storage import (
    CacheWarning,
    StorageError,
    atomic_save,
    atomic_write_json,
)
from gaplab.training.train import Checkpoint, train
from tests.test_run_cache import (  # noqa: F401 - teacher is a fixture
    _refused,
    _rewrite,
    read_only,
    teacher,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(steps=4, eval_every=2)


@contextmanager
def small_disk(tmp_path: Path, size: str = "1m"):
    """A real file system of ``size`` (tmpfs): torch's writer fails on it as on a full disk,
    with a RuntimeError, which a mocked OSError never shows. Skipped where mounting is refused."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
        capture_output=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# --- the storage layer on a real full and read-only disk ------------------------------------------------


def test_a_real_full_disk_raises_a_storage_error_and_keeps_the_old_file(tmp_path):
    with small_disk(tmp_path) as disk:
        target = disk / "x.pt"
        atomic_save({"v": torch.zeros(10)}, target)
        with pytest.raises(StorageError, match="no space left") as err:
            atomic_save({"v": torch.zeros(1_000_000)}, target)
        assert err.value.errno == errno.ENOSPC
        assert sorted(p.name for p in disk.iterdir()) == ["x.pt"]
        assert torch.load(target, weights_only=True)["v"].shape == (10,)


def test_a_read_only_disk_names_itself_not_the_cleanup(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        with pytest.raises(StorageError, match="read-only|permission") as err:
            atomic_write_json(folder / "meta.json", {"a": 1})
    assert err.value.errno in (errno.EROFS, errno.EACCES)


def test_a_checkpoint_on_a_full_disk_warns_and_training_goes_on(tmp_path):
    cfg = runs.mad_config("smoke", steps=4, eval_every=2)
    with small_disk(tmp_path, "64k") as disk:
        with pytest.warns(CacheWarning, match="checkpoint at step 2 not written"):
            result = train(cfg, disk / "run", device="cpu", progress=False)
        assert [h["step"] for h in result.history] == [0, 2, 4]
        assert not [p for p in (disk / "run").iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_at_the_final_save_keeps_the_run_and_its_checkpoint(
    tmp_path, monkeypatch
):
    """The final save fails on a real full disk: the run is returned, the message says where
    to free space, and the last checkpoint stays for the next attempt."""
    cfg = runs.mad_config("smoke", **TINY)
    fresh = train(cfg, None, device="cpu", progress=False)
    key = runs.run_key(runs.resolve_glyphs(cfg))
    with small_disk(tmp_path, "8m") as disk:
        monkeypatch.setenv(store.ENV, str(disk))

        def train_then_fill(run_dir):
            r = train(cfg, run_dir, device="cpu", progress=False)
            st = os.statvfs(disk)
            (disk / "filler").write_bytes(
                b"\0" * max(0, st.f_bavail * st.f_frsize - 4096)
            )
            return r

        with pytest.warns(CacheWarning, match="could not be stored .*free space there"):
            got = runs.cached_run(
                key,
                load=lambda f: pytest.fail("nothing is stored yet"),
                train=train_then_fill,
                to_state=lambda r: runs.mad._mad_state(cfg, r, "single run"),
            )
        entry = disk / key
        assert got.history == fresh.history
        assert not (entry / store.FINAL).exists()
        assert Checkpoint(entry).step() == cfg.steps  # whole, and at the last step
        assert not [p for p in entry.iterdir() if p.name.endswith(".tmp")]


# --- checkpoints that prove themselves -------------------------------------------------------------------


def _flip(path: Path, at: float) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip-early", "flip-late", "truncate"])
def test_a_damaged_checkpoint_is_set_aside_and_training_starts_over(tmp_path, damage):
    cfg = runs.mad_config("smoke", steps=6, eval_every=2)
    run_dir = tmp_path / "run"
    train(cfg, run_dir, device="cpu", progress=False, stop_after=4)
    ckpt = run_dir / store.CKPT
    if damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    else:
        _flip(ckpt, 0.3 if damage == "flip-early" else 0.9)
    with pytest.warns(CacheWarning, match=r"ckpt.pt is damaged: .*set aside as"):
        resumed = train(cfg, run_dir, device="cpu", progress=False)
    fresh = train(cfg, None, device="cpu", progress=False)
    assert resumed.history == fresh.history  # from step 0, not from the damaged state
    assert len(list(run_dir.glob("ckpt.damaged-*.pt"))) == 1


def test_a_whole_checkpoint_resumes_to_the_same_numbers(tmp_path):
    cfg = runs.mad_config("smoke", steps=6, eval_every=2)
    run_dir = tmp_path / "run"
    train(cfg, run_dir, device="cpu", progress=False, stop_after=4)
    assert Checkpoint(run_dir).step() == 4
    sums = json.loads((run_dir / "ckpt.json").read_text())
    assert (
        len(sums["sha256"]) == 2
    )  # the step-4 checkpoint and the step-2 one before it
    resumed = train(cfg, run_dir, device="cpu", progress=False)
    assert resumed.history == train(cfg, None, device="cpu", progress=False).history


def test_a_kill_between_the_checksums_and_the_checkpoint_resumes_the_older_one(
    tmp_path, monkeypatch
):
    """ckpt.json already names the step-4 file, which never landed: the step-2 file stays
    whole and is resumed from step 2, not taken for step 4."""
    cfg = runs.mad_config("smoke", steps=6, eval_every=2)
    run_dir = tmp_path / "run"
    real, saves = os.replace, []

    def killed(src, dst):
        if Path(dst).name == store.CKPT:
            saves.append(dst)
            if len(saves) == 2:
                raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir, device="cpu", progress=False)
    monkeypatch.setattr(os, "replace", real)
    assert json.loads((run_dir / "ckpt.json").read_text())["step"] == 4
    assert Checkpoint(run_dir).step() == 2
    resumed = train(cfg, run_dir, device="cpu", progress=False)
    assert resumed.history == train(cfg, None, device="cpu", progress=False).history


def test_a_checkpoint_from_before_checksums_still_resumes(tmp_path):
    cfg = runs.mad_config("smoke", steps=6, eval_every=2)
    run_dir = tmp_path / "run"
    train(cfg, run_dir, device="cpu", progress=False, stop_after=4)
    (run_dir / "ckpt.json").unlink()
    assert Checkpoint(run_dir).step() == 4


# --- a finished run is never thrown away --------------------------------------------------------------------


def test_a_kill_between_the_finished_files_resumes_instead_of_retraining(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(store.ENV, str(tmp_path))
    cfg = runs.mad_config("smoke", **TINY)
    real = os.replace

    def killed(src, dst):
        if Path(dst).name == store.FINAL:
            raise KeyboardInterrupt  # after meta.json named the new file, before it took its place
        return real(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        runs.get_or_train(cfg, progress=False)
    monkeypatch.setattr(os, "replace", real)
    (entry,) = [p for p in tmp_path.iterdir() if store.is_entry_name(p.name)]
    assert not (entry / store.FINAL).exists()
    assert Checkpoint(entry).step() == cfg.steps  # the last checkpoint is still there
    state = {r["key"]: r["state"] for r in cache_cli.list_entries()}
    assert state[entry.name] == "training or interrupted"

    result = runs.get_or_train(cfg, progress=False)
    assert store.entry_problem(entry) is None
    assert result.history == train(cfg, None, device="cpu", progress=False).history


def _stored_entry(cache: Path, monkeypatch):
    """A tiny run trained and stored in ``cache``: its config and its entry folder."""
    monkeypatch.setenv(store.ENV, str(cache))
    cfg = runs.mad_config("smoke", **TINY)
    runs.get_or_train(cfg, progress=False)
    (entry,) = [p for p in cache.iterdir() if store.is_entry_name(p.name)]
    return cfg, entry


def test_a_damaged_final_run_is_set_aside_and_its_checkpoint_kept(
    tmp_path, monkeypatch
):
    """Formerly the whole entry was deleted, checkpoint included."""
    cfg, entry = _stored_entry(tmp_path, monkeypatch)
    _flip(entry / store.FINAL, 0.5)
    train(cfg, tmp_path / "elsewhere", device="cpu", progress=False)
    (tmp_path / "elsewhere" / "ckpt.pt").rename(entry / store.CKPT)
    (tmp_path / "elsewhere" / "ckpt.json").rename(entry / "ckpt.json")
    with pytest.warns(CacheWarning, match="set aside as final.damaged-"):
        runs.get_or_train(cfg, progress=False)
    assert store.entry_problem(entry) is None
    assert len(list(entry.glob("final.damaged-*.pt"))) == 1
    removed = cache_cli.prune()
    assert [Path(r["path"]).name[:14] for r in removed] == ["final.damaged-"]


# --- leftovers, locks, a cache that cannot be written ----------------------------------------------------------


def test_leftovers_of_killed_writers_are_not_listed_and_are_pruned(
    tmp_path, monkeypatch
):
    _, entry = _stored_entry(tmp_path, monkeypatch)
    size = store.entry_size(entry)
    (entry / ".ckpt.pt.4242.tmp").write_bytes(b"x" * 5000)
    assert store.entry_size(entry) == size
    lock = store.EntryLock(entry)
    assert lock.acquire(wait=False)
    try:  # a trainer holds the entry: its temporary file is live and stays
        assert cache_cli.prune() == []
    finally:
        lock.release()
    removed = cache_cli.prune()
    assert [Path(r["path"]).name for r in removed] == [".ckpt.pt.4242.tmp"]
    assert not (entry / ".ckpt.pt.4242.tmp").exists()


def test_the_entry_lock_holds_across_processes(tmp_path):
    lock = store.EntryLock(tmp_path)
    assert lock.acquire(wait=False)
    probe = (
        "import sys; sys.path.insert(0, 'lib'); from gaplab.runs.store import EntryLock; "
        f"print(EntryLock({str(tmp_path)!r}).acquire(wait=False))"
    )
    try:
        held = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True
        )
        assert held.stdout.strip() == "False", held.stderr
    finally:
        lock.release()
    free = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True
    )
    assert free.stdout.strip() == "True", free.stderr


def test_a_second_trainer_of_one_key_waits_and_loads(tmp_path, monkeypatch):
    """While this process trains a run, a second process asking for it waits on the entry's
    lock, then loads what this one stored instead of training it again."""
    monkeypatch.setenv(store.ENV, str(tmp_path))
    cfg = runs.resolve_glyphs(runs.mad_config("smoke", **TINY))
    key = runs.run_key(cfg)
    found, slot = runs.cache.find_or_reserve(
        key, load=lambda f: None, kind="mad", config=cfg.to_dict(), version=None
    )
    assert found is None and slot.lock is not None
    script = (
        "import sys; sys.path.insert(0, 'lib'); from gaplab import runs; "
        "cfg = runs.mad_config('smoke', steps=4, eval_every=2); "
        "r = runs.get_or_train(cfg, progress=False); print('steps', r.history[-1]['step'])"
    )
    second = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, store.ENV: str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        err = ""
        while "waiting for it" not in err:
            line = second.stderr.readline()
            if not line:
                break
            err += line
        assert "is being trained by another process; waiting" in err, err
        result = train(cfg, slot.run_dir, device="cpu", progress=False)
        runs.cache.keep(
            slot,
            result,
            to_state=lambda r: runs.mad._mad_state(cfg, r, "single run"),
            summarise=None,
        )
    finally:
        slot.release()
    out, rest = second.communicate(timeout=600)
    assert second.returncode == 0, err + rest
    assert "steps 4" in out
    assert "training it" not in rest and "resuming" not in rest  # it loaded


def test_prepare_refuses_at_once_without_a_writable_cache(
    tmp_path, monkeypatch, capsys
):
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setenv(store.ENV, str(ro))
    monkeypatch.setattr(
        runs.mad, "train", lambda *a, **k: pytest.fail("nothing may be trained")
    )
    with read_only(ro):
        code = gaplab_main(["cache", "prepare", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no directory of the run cache can be written" in err and store.ENV in err


def test_metadata_of_the_wrong_shape_does_not_break_list_or_prune(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(store.ENV, str(tmp_path))
    bad = tmp_path / ("a" * 20)
    bad.mkdir()
    (bad / "meta.json").write_text("[1, 2, 3]")
    (bad / "final.pt").write_bytes(b"x")
    other = tmp_path / ("b" * 20)
    other.mkdir()
    (other / "meta.json").write_text('{"status": "complete", "files": 7}')
    (other / "final.pt").write_bytes(b"x")
    rows = {r["key"]: r["state"] for r in cache_cli.list_entries()}
    assert rows["a" * 20].startswith("damaged")
    assert rows["b" * 20] == "damaged: meta.json names no checksum for final.pt"
    assert {Path(r["path"]).name for r in cache_cli.prune(dry_run=True)} >= {"a" * 20}


# --- archives checked before anything is written ------------------------------------------------------------


def _watch_writes(monkeypatch) -> list[str]:
    """The paths every later ``open(..., "w...")`` of this test writes, in order."""
    writes = []
    real_open = open

    def watching(path, mode="r", *a, **k):
        if "w" in mode:
            writes.append(str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", watching)
    return writes


def _declared_bytes(n: int):
    """A manifest whose final.pt claims ``n`` bytes (the member itself unchanged)."""

    def change(info, data):
        m = json.loads(data)
        for e in m["entries"].values():
            e["files"]["final.pt"]["bytes"] = n
        data = json.dumps(m).encode()
        info.size = len(data)
        return info, data

    return change


def _huge_manifest(info, data):
    data = data.rstrip() + b" " * (archive.MANIFEST_LIMIT + 10)
    info.size = len(data)
    return info, data


def _wrong_shape(info, data):
    data = b"[1, 2, 3]"
    info.size = len(data)
    return info, data


@pytest.mark.parametrize(
    "change, message",
    [
        (
            _declared_bytes(10 * 10**9),
            "holds .* bytes where the manifest says 10000000000",
        ),
        (_declared_bytes(-1), "is not a run cache entry"),
        (_huge_manifest, "manifest declares .* bytes"),
        (_wrong_shape, "manifest is not a JSON object"),
    ],
)
def test_archive_sizes_are_checked_before_anything_is_written(
    teacher, tmp_path, change, message, monkeypatch
):
    bad = tmp_path / "bad.tar"
    _rewrite(
        teacher["tar"],
        bad,
        lambda info, data: (
            change(info, data) if info.name.endswith("manifest.json") else (info, data)
        ),
    )
    writes = _watch_writes(monkeypatch)
    _refused(bad, tmp_path / "student", message)
    assert writes == []


@pytest.mark.parametrize("keep", [0.3, 0.97])
def test_a_truncated_archive_is_named(teacher, tmp_path, keep):
    data = teacher["tar"].read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: int(len(data) * keep)])
    _refused(cut, tmp_path / "student", "truncated or damaged|lacks files|not a gaplab")
    packed = tmp_path / "packed.tar.gz"
    packed.write_bytes(gzip.compress(data)[: int(len(gzip.compress(data)) * keep)])
    _refused(
        packed,
        tmp_path / "student2",
        "truncated or damaged|not a readable|not a gaplab",
    )


def test_an_import_in_another_pid_namespace_is_not_taken_for_stale(teacher, tmp_path):
    """A live import whose process id means nothing here (another container) holds its
    folder's lock: a second import must leave it alone."""
    into = tmp_path / "shared"
    into.mkdir()
    live = into / ".import-999999999-0a0b"  # a pid that does not exist here
    live.mkdir()
    lock = store.EntryLock(live)
    assert lock.acquire(wait=False)
    try:
        cache_cli.import_archive(teacher["tar"], into)
        assert live.exists()
        assert not unpack.stale_imports(into)
    finally:
        lock.release()
    assert unpack.stale_imports(into) == [live]


def test_an_import_that_cannot_fit_is_refused_before_writing(teacher, tmp_path):
    with small_disk(tmp_path, "64k") as disk:
        need = sum(
            f["bytes"]
            for e in unpack._read_manifest(
                tarfile.open(teacher["tar"]), teacher["tar"]
            )["entries"].values()
            for f in e["files"].values()
        )
        assert need > 64 * 1024  # the case is real: the run does not fit
        _refused(teacher["tar"], disk / "runs", "needs .* MB and .* free")


# --- every command: bad input gets one line and exit code 2 ----------------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    import numpy as np

    f = {}
    f["a file"] = tmp_path / "plain.txt"
    f["a file"].write_text("not a folder\n")
    f["a folder"] = tmp_path / "folder"
    f["a folder"].mkdir()
    good = tmp_path / "emb.npz"
    rng = np.random.default_rng(0)
    np.savez(good, image=rng.normal(size=(8, 4)), text=rng.normal(size=(8, 4)))
    f["good npz"] = good
    f["complex npz"] = tmp_path / "complex.npz"
    np.savez(
        f["complex npz"],
        image=rng.normal(size=(8, 4)) + 1j,
        text=rng.normal(size=(8, 4)),
    )
    f["cut npz"] = tmp_path / "cut.npz"
    f["cut npz"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    f["cut tar"] = tmp_path / "cut.tar"
    with tarfile.open(tmp_path / "whole.tar", "w") as tf:
        tf.add(good, arcname="gaplab-runs/manifest.json")
    f["cut tar"].write_bytes((tmp_path / "whole.tar").read_bytes()[:700])
    f["cut tgz"] = tmp_path / "cut.tar.gz"
    f["cut tgz"].write_bytes(gzip.compress((tmp_path / "whole.tar").read_bytes())[:300])
    return f


BAD_COMMANDS = [
    (["record", "--profile", "../escape"], "invalid choice"),
    (
        ["record", "--chapters", "mad_training", "--out", "{a file}"],
        "records folder .* cannot be written",
    ),
    (["report", "--embeddings", "{good npz}", "--out", "{a file}"], "report folder"),
    (["report", "--embeddings", "{cut npz}"], "not a readable .npy or .npz"),
    (["report", "--embeddings", "{a file}"], "not a readable .npy or .npz"),
    (["cache", "import", "{cut tar}"], "truncated or damaged|not a readable tar"),
    (["cache", "import", "{cut tgz}"], "truncated or damaged|not a readable tar"),
    (["cache", "import", "{a file}"], "not a readable tar"),
    (["cache", "import", "/nonexistent/x.tar"], "does not exist"),
    (
        ["cache", "export", "--profile", "smoke", "--out", "{a file}/x.tar"],
        "archive's folder .* cannot be written",
    ),
    (["cache", "export", "--profile", "smoke", "--out", "{a folder}"], "is a folder"),
    (
        ["report", "--embeddings", "{good npz}", "--limit", "0"],
        "--limit must be at least 1",
    ),
    (
        ["report", "--embeddings", "{good npz}", "--limit", "5"],
        "without --model, --data and --limit",
    ),
    (["report", "--embeddings", "{a folder}"], "is a folder"),
    (["report", "--embeddings", "{complex npz}"], "embeddings must be real numbers"),
    (["record", "--max-minutes", "-1"], "give 0 or more minutes"),
    (["cache", "import", "--into", "{a file}", "{cut tar}"], "It comes from --into"),
]


@pytest.mark.parametrize("argv, message", BAD_COMMANDS)
def test_bad_input_gets_one_line_and_exit_code_2(
    argv, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(store.ENV, str(tmp_path / "cache"))
    files = _bad_files(tmp_path)
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    try:
        code = gaplab_main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert re.search(message, last), err
    if not err.startswith("usage:"):  # argparse prints its usage lines first
        assert len(err.splitlines()) == 1, err


def test_an_internal_error_is_one_line_and_a_file(monkeypatch, capsys):
    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cache_cli, "run", broken)
    assert gaplab_main(["cache", "where"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("internal error: KeyError")
    written = Path(re.search(r"traceback is in (\S+?)\)", err).group(1))
    assert "KeyError" in written.read_text()
    written.unlink()


def test_a_decompression_bomb_is_named_with_its_file(tmp_path):
    import struct
    import zlib

    from PIL import Image

    from gaplab.zoo.datasets import DataError, load_data

    path = tmp_path / "cls" / "a" / "bomb.png"
    path.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 40000, 40000)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    Image.new("RGB", (8, 8)).save(tmp_path / "cls" / "b.png")
    (tmp_path / "cls" / "b").mkdir()
    (tmp_path / "cls" / "b.png").rename(tmp_path / "cls" / "b" / "ok.png")
    images = load_data("folder", tmp_path / "cls").images
    with pytest.raises(DataError, match="bomb.png is far larger than any photograph"):
        images[images.ids().index("a/bomb.png")]


def test_an_entry_whose_meta_disagrees_with_its_manifest_is_refused_unwritten(
    teacher, tmp_path, monkeypatch
):
    """A consistent manifest and final.pt (300 KB of zeros) beside the entry's real meta.json:
    formerly every byte was written before the entry check refused it."""
    import hashlib

    fake = bytes(300_000)

    def change(info, data):
        if info.name.endswith("final.pt"):
            info.size = len(fake)
            return info, fake
        if info.name.endswith("manifest.json"):
            m = json.loads(data)
            for e in m["entries"].values():
                e["files"]["final.pt"] = {
                    "bytes": len(fake),
                    "sha256": hashlib.sha256(fake).hexdigest(),
                }
            data = json.dumps(m).encode()
            info.size = len(data)
        return info, data

    bad = tmp_path / "bad.tar"
    _rewrite(teacher["tar"], bad, change)
    writes = _watch_writes(monkeypatch)
    _refused(bad, tmp_path / "student", "meta.json does not describe the final.pt")
    assert writes == []


# --- what the second campaign found (each failed before its fix) -------------------------------------------


def test_torch_write_failures_keep_their_cause(tmp_path):
    with pytest.raises(StorageError, match="folder does not exist") as err:
        atomic_save({"v": torch.zeros(3)}, tmp_path / "missing" / "x.pt")
    assert err.value.errno == errno.ENOENT
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        with pytest.raises(StorageError, match="read-only|permission") as err:
            atomic_save({"v": torch.zeros(3)}, folder / "x.pt")
    assert err.value.errno in (errno.EROFS, errno.EACCES)


def test_a_file_that_is_no_checkpoint_is_called_so(tmp_path):
    from gaplab.zoo.models import CheckpointError, _torch_load

    junk = tmp_path / "garbage.pt"
    junk.write_bytes(b"garbage")
    with pytest.raises(
        CheckpointError, match="is not a torch checkpoint: it starts with"
    ):
        _torch_load(junk, junk.read_bytes()[:8])


def test_entry_names_and_keys_are_exact(tmp_path, monkeypatch):
    assert not store.is_entry_name("a" * 20 + "\n")
    cfg, entry = _stored_entry(tmp_path, monkeypatch)
    other = tmp_path / ("0123456789abcdef0123")
    entry.rename(other)  # a renamed copy: its meta.json names another run
    assert "is for run" in store.entry_problem(other)


def test_a_manifest_whose_entries_are_not_an_object_says_so(teacher, tmp_path):
    def entries_list(info, data):
        if info.name.endswith("manifest.json"):
            m = json.loads(data)
            m["entries"] = []
            data = json.dumps(m).encode()
            info.size = len(data)
        return info, data

    bad = tmp_path / "bad.tar"
    _rewrite(teacher["tar"], bad, entries_list)
    _refused(bad, tmp_path / "student", "'entries' is a list")


def test_prune_removes_a_link_to_an_old_entry_and_goes_on(tmp_path, monkeypatch):
    cfg, entry = _stored_entry(tmp_path / "c", monkeypatch)
    elsewhere = tmp_path / ("b" * 20)
    elsewhere.mkdir()
    (elsewhere / "final.pt").write_bytes(b"x")  # no metadata: pruned as an old entry
    (tmp_path / "c" / ("b" * 20)).symlink_to(elsewhere)
    (tmp_path / "c" / ("c" * 20)).mkdir()  # a second leftover, after the link
    removed = {Path(r["path"]).name for r in cache_cli.prune()}
    assert removed == {"b" * 20, "c" * 20}
    assert elsewhere.exists() and not (tmp_path / "c" / ("b" * 20)).exists()
    assert store.entry_problem(entry) is None


def test_a_self_check_given_no_namespace_says_what_to_pass():
    from gaplab.teach import verdict
    from gaplab.teach.exercises import all_exercises

    ex = next(iter(all_exercises().values()))
    for odd in (None, [1], "abc"):
        v = verdict(ex, odd)
        assert v.status == "invalid" and "globals()" in v.message


def test_identical_embeddings_report_no_gap_share():
    import numpy as np

    from gaplab.zoo.report import gap_measures

    x = np.random.default_rng(0).normal(size=(40, 8))
    out = gap_measures(x, x)
    assert out["l2m"] == 0 and out["gap_share_top2"] is None
