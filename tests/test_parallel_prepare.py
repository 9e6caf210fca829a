"""Training a chapter set's runs side by side (``cache prepare --jobs``, the book build): the same runs as one
by one, a fine-tuning run only after the run it starts from, a worker's error raised in the caller, and a
clear refusal of a job count that means nothing."""

from __future__ import annotations

import math

import pytest

from gaplab.__main__ import main as gaplab_main
from gaplab.book import catalogue
from gaplab.runs import parallel, store


@pytest.mark.parametrize("bad", [0, -1, "two", "1.5", 2.5, True])
def test_a_job_count_that_means_nothing_is_refused(bad):
    with pytest.raises(ValueError, match="jobs must be a whole number >= 1 or 'auto'"):
        parallel.cpu_jobs(bad, cores=2)


def test_the_cores_are_shared_among_the_processes():
    assert parallel.cpu_jobs("auto", cores=1) == (1, 1)
    assert parallel.cpu_jobs("auto", cores=2) == (2, 1)
    assert parallel.cpu_jobs("auto", cores=6) == (4, 1)
    assert parallel.cpu_jobs(3, cores=12) == (3, 4)
    assert parallel.cpu_jobs("8", cores=2) == (8, 1)


def test_a_worker_s_error_is_raised_in_the_caller():
    finished = []
    with pytest.raises(ValueError, match="math domain error"):
        parallel.map_in_processes(
            math.sqrt,
            [4.0, -1.0],
            jobs=2,
            threads=1,
            on_done=lambda item, s: finished.append(item),
        )
    assert -1.0 not in finished


def test_side_by_side_trains_the_runs_one_by_one_would(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    lines: list[str] = []
    runs = catalogue.prepare(
        "smoke", ["entropy_link"], progress=False, echo=lines.append, jobs=2
    )
    keys = {r.key for r in runs}
    # the frozen fine-tuning arm's key is known only once its source is stored
    assert None not in keys
    assert all(store.find_final(k) is not None for k in keys)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted(keys)
    assert (
        lines[0].startswith("training ")
        and "2 at a time with 1 thread each" in lines[0]
    )
    # the fine-tuning runs trained in a pass after their source's
    passes = [i for i, line in enumerate(lines) if line.startswith("training ")]
    assert len(passes) == 2
    second = " ".join(lines[passes[1] :])
    assert "fine-tuning frozen" in second and "fine-tuning learnable" in second
    assert "fine-tuning source" not in second
    # what is stored is only checked: nothing trains twice
    again: list[str] = []
    catalogue.prepare(
        "smoke", ["entropy_link"], progress=False, echo=again.append, jobs=2
    )
    assert again == []


def test_the_command_refuses_a_bad_job_count_before_training(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    assert gaplab_main(["cache", "prepare", "--profile", "smoke", "--jobs", "0"]) == 2
    assert "jobs must be a whole number" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_test_workers_share_the_cores_as_threads():
    # make test runs pytest -n auto: each worker's torch (and what it starts) gets its share of the cores,
    # lowered from the Makefile's OMP_NUM_THREADS=2, or two OpenMP pools spin against each other
    import os

    import torch

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        pytest.skip("not run under pytest-xdist with several workers")
    share = max(1, (os.cpu_count() or 1) // workers)
    assert int(os.environ["OMP_NUM_THREADS"]) <= share
    assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])


def test_the_build_refuses_a_bad_job_count_by_its_variable(tmp_path):
    from tests.conftest import load_script

    build = load_script("scripts", "build_book")
    with pytest.raises(
        SystemExit, match="GAPLAB_BUILD_JOBS: jobs must be a whole number"
    ):
        build.prepare_runs(tmp_path, {"GAPLAB_BUILD_JOBS": "many"})
    # a book without the chapters that train (the tests' small books) prepares nothing
    assert build.prepare_runs(tmp_path, {"GAPLAB_BUILD_JOBS": "2"}) == 0
