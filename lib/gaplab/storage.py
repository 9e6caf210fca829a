"""Writing files so that a reader never sees half of one, and saying plainly why a write failed.

Every file gaplab keeps (checkpoints, finished runs, their metadata, imported archives) is written to a
temporary name in the target folder and renamed into place. If the write fails (a full disk, a read-only
share, a quota), the temporary file is removed, the previous version stays as it was, and the error says
what happened in words a user can act on.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "StorageError",
    "CacheWarning",
    "explain_os_error",
    "atomic_save",
    "is_temporary",
    "atomic_write_bytes",
    "atomic_write_json",
    "sha256_file",
    "check_output_dir",
    "probe_write",
    "source_fingerprint",
]

#: temporary files start with this (a dot: hidden from listings), see :func:`is_temporary`
TMP_PREFIX = "."

_REMEDIES = {
    errno.ENOSPC: "no space left on the device: free some space, or write to another disk "
    "(for the run cache: GAPLAB_CACHE)",
    errno.EDQUOT: "the disk quota is exhausted: free some space, or write to another disk "
    "(for the run cache: GAPLAB_CACHE)",
    errno.EROFS: "the file system is read-only: choose a writable folder "
    "(for the run cache: GAPLAB_CACHE)",
    errno.EACCES: "permission denied: choose a folder you can write "
    "(for the run cache: GAPLAB_CACHE)",
    errno.EPERM: "operation not permitted: choose a folder you can write "
    "(for the run cache: GAPLAB_CACHE)",
}


class StorageError(OSError):
    """A file could not be written; nothing partial was left behind. ``errno`` is the cause's."""


class CacheWarning(UserWarning):
    """A run could not be loaded from, or stored in, the run cache, or a checkpoint was not written; work goes on."""


def explain_os_error(exc: OSError) -> str:
    """A short reason for ``exc`` with what to do about it (the system's message when there is no better one)."""
    return _REMEDIES.get(exc.errno, exc.strerror or str(exc))


#: what torch's zip writer raises (a RuntimeError, not an OSError) when a write fails part-way,
#: as it does on a full disk: "[enforce fail at inline_container.cc:...] . unexpected pos ..."
_TORCH_WRITE_FAILURE = (
    "inline_container",
    "PytorchStreamWriter",
    "unexpected pos",
    "Parent directory",
)

#: the causes torch's message may name in words, most specific first
_NAMED_CAUSES = (
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
)

#: below this many free bytes a failed write is taken to have hit a full disk
_NEARLY_FULL = 1 << 20


def _discard(tmp: Path) -> None:
    """Remove a temporary file, never hiding the error that made it a leftover (on a
    read-only disk even removing a missing file fails, with EROFS)."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def _as_os_error(exc: RuntimeError, folder: Path) -> OSError | None:
    """The OSError behind a failed torch write, or None when ``exc`` is not one."""
    text = str(exc)
    if not any(s in text for s in _TORCH_WRITE_FAILURE):
        return None
    for code in _NAMED_CAUSES:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    if "Parent directory" in text and "does not exist" in text:
        return OSError(errno.ENOENT, "its folder does not exist")
    try:
        full = shutil.disk_usage(folder).free < _NEARLY_FULL
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(
        errno.EIO,
        "the write stopped part-way (torch: "
        f"{str(exc).strip()[:100]}); check that the disk has space and is healthy",
    )


def _atomic(path: Path, write, before_replace=None) -> None:
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}.tmp")
    try:
        try:
            write(tmp)
        except RuntimeError as exc:
            cause = _as_os_error(exc, path.parent)
            if cause is None:
                raise
            raise cause from exc
        if before_replace is not None:
            # e.g. metadata naming the new file's checksum: written while the old file is still in
            # place, so a kill between the two leaves a checksum that no file matches, never a
            # file that its checksum does not describe
            before_replace(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise StorageError(
            exc.errno,
            f"could not write {path}: {explain_os_error(exc)} "
            f"(nothing partial was left; an earlier version, if any, is unchanged)",
        ) from exc
    except BaseException:
        _discard(tmp)
        raise


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_save` and its kin (a leftover
    when its writer was killed)."""
    return name.startswith(TMP_PREFIX) and name.endswith(".tmp")


def atomic_save(obj, path, *, before_replace=None) -> None:
    """``torch.save(obj)`` to ``path`` atomically; raises :class:`StorageError` when the write
    fails, a full disk included. ``before_replace(tmp)`` runs once the new file is whole and
    before it takes the old one's place."""
    import torch  # heavy: only saving tensors needs torch

    _atomic(path, lambda tmp: torch.save(obj, tmp), before_replace)


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_json(path, obj) -> None:
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    )


def probe_write(folder) -> None:
    """Create and remove a file in ``folder``; raises the OSError of a folder that cannot be
    written (permission bits do not stop root, and a read-only mount is only found by trying)."""
    fd, probe = tempfile.mkstemp(prefix=f"{TMP_PREFIX}write-probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def check_output_dir(path, what: str = "output folder") -> Path:
    """Make sure files can be written in the folder ``path`` (or in the folders it would be made
    in), before any work whose results go there. Creates nothing; raises :class:`StorageError`
    naming the folder and why."""
    path = Path(path).expanduser().absolute()
    here = path
    while not here.exists() and here != here.parent:
        here = here.parent  # the folder the missing ones would be made in
    try:
        if not here.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{here} is a file, not a folder")
        probe_write(here)
    except OSError as exc:
        reason = _REMEDIES.get(exc.errno, "").split(":")[0] or exc.strerror or str(exc)
        raise StorageError(
            exc.errno, f"the {what} {path} cannot be written: {reason}"
        ) from None
    return path


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(
            node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_fingerprint(path) -> bytes:
    """What a source file contributes to a cache key: for Python, its syntax tree without docstrings, so that
    reformatting, comments and documentation leave stored runs valid; for any other file, its bytes."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix != ".py":
        return data
    tree = _strip_docstrings(ast.parse(data, filename=str(path)))
    return ast.dump(tree, annotate_fields=True, include_attributes=False).encode()
