"""Run configurations from profiles, and a content-addressed cache of finished training runs.

A run's key hashes its :class:`~gaplab.training.train.TrainConfig` together with the version of the training code (a hash
of the modules and model configs that determine the result), so changing either trains anew. Entries live in the
directories of ``$GAPLAB_CACHE`` (default: the user's cache folder, e.g. ``~/.cache/gaplab/runs``; several
directories may be given, see :mod:`gaplab.runs.store`), one folder per key: ``ckpt.pt`` while training (a killed
run resumes from it once its SHA-256 is checked), ``final.pt`` and ``meta.json`` when done, written atomically,
checked against their SHA-256 and loaded with ``weights_only=True``. A damaged file is set aside, named in a
warning, and the run resumes from its checkpoint or trains again; one process trains a key at a time (an
advisory lock on the entry), and a second one waits for the first and loads its run.

:mod:`gaplab.runs.cache` is the generic cache (keys, slots, locks, storing), :mod:`gaplab.runs.mad` MAD runs on
it (keys, single runs, sets of runs, grids), :mod:`gaplab.runs.versions` the training code a key hashes,
:mod:`gaplab.runs.store` the search path and entry files, :mod:`gaplab.runs.archive` packs runs for a class. The
names used from ``gaplab.runs`` are re-exported here.

Where runs go is read from the environment at each call: :data:`store.ENV <gaplab.runs.store.ENV>`, and
:data:`GRID_ENV` and :data:`GRID_MAX_ENV` for how missing runs of a set are trained:

>>> from gaplab import runs
>>> runs.store.ENV, runs.GRID_ENV, runs.GRID_MAX_ENV
('GAPLAB_CACHE', 'GAPLAB_GRID', 'GAPLAB_GRID_MAX')

A directory that cannot hold a cache stops a call before any model is built, with a
:class:`CacheLocationError` that says what to do:

>>> import os, tempfile
>>> os.environ["GAPLAB_CACHE"] = tempfile.mkstemp()[1]  # a file
>>> runs.cache_dir()  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
gaplab.runs.store.CacheLocationError: run cache ... cannot be used: it is a file. ...
>>> os.environ["GAPLAB_CACHE"] = tempfile.mkdtemp()

Two more a caller may catch: a run that cannot be stored (a read-only cache, a full disk)
is still returned, with a :class:`CacheWarning` saying why; a GPU out of memory during training raises
:class:`TrainingOutOfMemory`, whose message says how to go on (a smaller batch, another profile).

>>> issubclass(runs.CacheWarning, UserWarning)
True
>>> issubclass(runs.TrainingOutOfMemory, RuntimeError)
True
"""

from __future__ import annotations

from gaplab.runs import store
from gaplab.runs.cache import (
    TrainingOutOfMemory,
    cache_dir,
    cached_run,
    is_stored,
    last_numbers,
    progress_line,
)
from gaplab.runs.mad import (
    GRID_ENV,
    GRID_MAX_ENV,
    describe,
    get_or_train,
    get_or_train_all,
    init_weights,
    mad_config,
    resolve_glyphs,
    run_key,
    use_grids,
)
from gaplab.runs.store import CacheLocationError
from gaplab.runs.versions import code_version
from gaplab.storage import CacheWarning

__all__ = [
    "mad_config",
    "cache_dir",
    "code_version",
    "run_key",
    "cached_run",
    "describe",
    "get_or_train",
    "get_or_train_all",
    "init_weights",
    "resolve_glyphs",
    "is_stored",
    "last_numbers",
    "progress_line",
    "store",
    "CacheLocationError",
    "CacheWarning",
    "TrainingOutOfMemory",
    "use_grids",
    "GRID_ENV",
    "GRID_MAX_ENV",
]
