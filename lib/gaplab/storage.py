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
from pathlib import Path

__all__ = [
    "StorageError",
    "CacheWarning",
    "explain_os_error",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "sha256_file",
    "source_fingerprint",
]

_REMEDIES = {
    errno.ENOSPC: "no space left on the device: free some space, or point GAPLAB_CACHE at another disk",
    errno.EDQUOT: "the disk quota is exhausted: free some space, or point GAPLAB_CACHE at another disk",
    errno.EROFS: "the file system is read-only: put a writable directory in GAPLAB_CACHE",
    errno.EACCES: "permission denied: put a directory you can write in GAPLAB_CACHE",
    errno.EPERM: "operation not permitted: put a directory you can write in GAPLAB_CACHE",
}


class StorageError(OSError):
    """A file could not be written; nothing partial was left behind. ``errno`` is the cause's."""


class CacheWarning(UserWarning):
    """A run could not be loaded from, or stored in, the run cache, or a checkpoint was not written; work goes on."""


def explain_os_error(exc: OSError) -> str:
    """A short reason for ``exc`` with what to do about it (the system's message when there is no better one)."""
    return _REMEDIES.get(exc.errno, exc.strerror or str(exc))


def _atomic(path: Path, write) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(
            exc.errno,
            f"could not write {path}: {explain_os_error(exc)} "
            f"(nothing partial was left; an earlier version, if any, is unchanged)",
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save(obj, path) -> None:
    """``torch.save(obj)`` to ``path`` atomically; raises :class:`StorageError` when the write fails."""
    import torch

    _atomic(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_json(path, obj) -> None:
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    )


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
