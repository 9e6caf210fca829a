"""Progress bars and reader notes: what a chapter shows besides its results."""

from __future__ import annotations

import pytest

from gaplab.book import note
from gaplab.progress import BUILD_LOG_ENV, progress_bars


def test_bars_are_drawn_unless_the_book_build_logs_progress(monkeypatch, tmp_path):
    monkeypatch.delenv(BUILD_LOG_ENV, raising=False)
    assert progress_bars() and progress_bars(True)
    assert not progress_bars(False)
    monkeypatch.setenv(BUILD_LOG_ENV, str(tmp_path / "progress.log"))
    assert not progress_bars() and not progress_bars(True)


def test_the_run_cache_trains_without_a_bar_in_the_build(monkeypatch, tmp_path):
    import gaplab.runs as runs

    seen = []
    monkeypatch.setattr(
        runs.mad, "cached_run", lambda key, train, **kw: train(tmp_path)
    )
    monkeypatch.setattr(
        runs.mad,
        "train",
        lambda config, d, device, progress, **kw: seen.append(progress),
    )
    config = runs.mad_config("smoke")
    monkeypatch.delenv(BUILD_LOG_ENV, raising=False)
    runs.get_or_train(config)
    monkeypatch.setenv(BUILD_LOG_ENV, str(tmp_path / "progress.log"))
    runs.get_or_train(config)
    assert seen == [True, False]


def test_a_note_outside_a_notebook_is_printed(capsys):
    note("The probe did not run.\nSee https://example.org/data.")
    assert (
        capsys.readouterr().out
        == "The probe did not run.\nSee https://example.org/data.\n"
    )


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_a_note_in_a_notebook_is_an_admonition_with_links(shell, monkeypatch):
    shown = []
    monkeypatch.setattr(
        "gaplab.book.claims.display_rich", lambda obj, raw: shown.append((obj, raw))
    )
    note("FairFace is not at <root>.\nSee https://example.org/data.")
    ((obj, raw),) = shown
    assert raw and obj["text/plain"].startswith("FairFace")
    html = obj["text/html"]
    assert html.startswith('<div class="admonition note">')
    assert "&lt;root&gt;" in html
    assert '<a href="https://example.org/data">https://example.org/data</a>.' in html
