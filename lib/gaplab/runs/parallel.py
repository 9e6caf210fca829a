"""Training several runs at once on a CPU, each in a process of its own with a share of the cores.

On two cores one MAD run at ``cpu`` uses both through torch's threads, nearly but not quite fully: the book's
43 runs at ``cpu`` took 2,322 s one by one with two threads (the sum of their times in the build of commit
5dcb22d, 2026-12-05) and about 2,030 s two at a time with one thread each (commit 68a1e1f, 2026-12-06, same
machine), 1.14x. (A first try over 60 steps suggested 1.38x; a run's first steps are slow, and whole runs
gain far less.) So ``gaplab cache prepare --jobs`` and the book build train a chapter set's missing runs this
way before the chapters execute, and the chapters then load them.

A run's numbers can differ in their last digits with the number of threads that trained it (the order of a
sum inside a convolution), as they can between machines; the run key does not name the thread count, so
which run a cache holds is the one trained first. Each process trains whole runs through the run cache, so
its entry lock, checksums and resumption hold as for a run trained in a chapter.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable

__all__ = ["cpu_jobs", "map_in_processes"]

#: at most this many processes by default: more cores go to each process's threads
MAX_AUTO_JOBS = 4


def cpu_jobs(jobs: int | str = "auto", cores: int | None = None) -> tuple[int, int]:
    """``(processes, threads each)`` for ``jobs`` on a machine with ``cores`` cores (default: this one's).

    ``"auto"`` is one process per core up to :data:`MAX_AUTO_JOBS` (measured only on two cores: two
    processes of one thread, 1.14x over whole runs). The threads split the cores evenly, at least one each.

    >>> from gaplab.runs.parallel import cpu_jobs
    >>> cpu_jobs("auto", cores=2), cpu_jobs("auto", cores=16), cpu_jobs(1, cores=8)
    ((2, 1), (4, 4), (1, 8))
    """
    cores = cores or os.cpu_count() or 1
    if jobs == "auto":
        n = min(cores, MAX_AUTO_JOBS)
    else:
        try:
            n = int(jobs)
        except (TypeError, ValueError):
            n = 0
        if n < 1 or str(jobs).strip() != str(n):
            raise ValueError(
                f"jobs must be a whole number >= 1 or 'auto'; got {jobs!r}"
            )
    return n, max(1, cores // n)


def _start_worker(threads: int) -> None:
    import torch  # in the fresh worker process, before it trains anything

    torch.set_num_threads(threads)


def _timed(fn: Callable, item) -> float:
    t0 = time.perf_counter()
    fn(item)
    return time.perf_counter() - t0


def map_in_processes(
    fn: Callable,
    items: Iterable,
    *,
    jobs: int,
    threads: int,
    on_done: Callable[[object, float], None] = lambda item, seconds: None,
) -> None:
    """Call ``fn(item)`` for every item in ``jobs`` fresh processes of ``threads`` torch threads each,
    ``on_done(item, seconds)`` in this process as each one ends.

    ``fn`` must be importable by name (a module-level function) and its items picklable; what it returns is
    dropped, so a worker hands back no model. The first error stops what has not started and is raised
    here; runs already finished stay in the cache, and an interrupted one resumes from its checkpoint.
    """
    items = list(items)
    if not items:
        return
    # spawn, not fork: a forked child of a process that already ran torch may hang in its thread pool
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_start_worker, initargs=(threads,)
    ) as pool:
        pending = {pool.submit(_timed, fn, item): item for item in items}
        try:
            for done in futures.as_completed(pending):
                on_done(pending[done], done.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
