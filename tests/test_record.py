"""Records: chapters executed at a profile, their glued values and claim verdicts kept with where they ran."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from gaplab import book
from gaplab.__main__ import main as gaplab_main
from gaplab.book import record

ROOT = Path(__file__).resolve().parents[1]


def _notebook(folder: Path, stem: str = "tiny", *, without_myst_nb=False) -> Path:
    """A chapter in miniature: a parameters cell, a glued value, one claim that holds only at smoke."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    # as on Colab, where gaplab is installed without the book's tools
    hide = "import sys\nsys.modules['myst_nb'] = None\n" if without_myst_nb else ""
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            hide + "from gaplab.book import glue, check_claim\n"
            "x = {'smoke': 0.25, 'cpu': 0.75}[profile]\n"
            "glue('tiny_x', x)\n"
            "glue('tiny_list', [x, 2 * x])\n"
            "check_claim('x stays below one half', x < 0.5, f'x = {x}', profile)\n"
            "glue('tiny_after', 1)"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_chapter_is_recorded_with_its_values_claims_and_machine(tmp_path):
    _notebook(tmp_path / "nb")
    rec = record.record_chapter(
        "tiny", "smoke", out_dir=tmp_path / "rec", notebooks=tmp_path / "nb"
    )
    saved = json.loads((tmp_path / "rec" / "smoke" / "tiny.json").read_text())
    assert saved == rec
    assert rec["completed"] and rec["error"] is None
    assert rec["values"] == {"tiny_x": 0.25, "tiny_list": [0.25, 0.5], "tiny_after": 1}
    assert rec["claims"] == [
        {
            "statement": "x stays below one half",
            "holds": True,
            "evidence": "x = 0.25",
            "enforced": False,  # smoke reports and does not enforce
            "profile": "smoke",
            "not_at_this_scale": None,
        }
    ]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert rec["commit"] == head
    assert rec["machine"]["device"] == "cpu"
    assert rec["machine"]["precision"] == "float32"
    assert rec["wall_seconds"] > 0
    assert "--profile smoke --chapters tiny" in rec["command"]
    assert record.load_record("tiny", "smoke", out_dir=tmp_path / "rec") == rec
    assert not list((tmp_path / "rec" / "smoke").glob(".*"))  # no temporary file left


def test_a_record_needs_no_myst_nb(tmp_path):
    _notebook(tmp_path / "nb", without_myst_nb=True)
    rec = record.record_chapter(
        "tiny", "smoke", out_dir=tmp_path / "rec", notebooks=tmp_path / "nb"
    )
    assert rec["values"] == {"tiny_x": 0.25, "tiny_list": [0.25, 0.5], "tiny_after": 1}


def test_a_chapter_that_stops_is_recorded_as_stopped(tmp_path):
    _notebook(tmp_path / "nb")
    rec = record.record_chapter(
        "tiny", "cpu", out_dir=tmp_path / "rec", notebooks=tmp_path / "nb"
    )
    assert not rec["completed"]
    assert rec["error"].startswith("ClaimNotReproduced")
    assert rec["values"] == {"tiny_x": 0.75, "tiny_list": [0.75, 1.5]}
    assert [c["holds"] for c in rec["claims"]] == [False]
    assert rec["claims"][0]["enforced"]


def test_unknown_chapters_and_broken_records_are_named(tmp_path):
    with pytest.raises(record.RecordError, match="no chapter 'nope'"):
        record.record_chapter("nope", "smoke", out_dir=tmp_path, notebooks=tmp_path)
    assert record.load_record("tiny", "paper", out_dir=tmp_path) is None
    path = tmp_path / "paper" / "tiny.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(record.RecordError, match="tiny.json is not a readable"):
        record.load_record("tiny", "paper", out_dir=tmp_path)
    path.write_text(json.dumps({"schema": 1, "chapter": "tiny"}))
    with pytest.raises(record.RecordError, match="lacks profile"):
        record.load_record("tiny", "paper", out_dir=tmp_path)
    whole = {k: None for k in record._FIELDS} | {
        "schema": 1,
        "chapter": "other",
        "profile": "paper",
    }
    path.write_text(json.dumps(whole))
    with pytest.raises(record.RecordError, match="holds 'other'"):
        record.load_record("tiny", "paper", out_dir=tmp_path)


def test_show_sets_the_record_beside_this_build(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(book, "CLAIMS", [])
    monkeypatch.setattr(book, "GLUED", {})
    assert record.show("tiny", ["tiny_x"], out_dir=tmp_path) is None
    out = capsys.readouterr().out
    assert "No record of this chapter at profile 'paper' yet" in out
    assert "python -m gaplab record --profile paper --chapters tiny" in out

    _notebook(tmp_path / "nb")
    record.record_chapter(
        "tiny", "smoke", out_dir=tmp_path / "rec", notebooks=tmp_path / "nb"
    )
    book.glue("tiny_x", 0.5)
    book.check_claim("x stays below one half", False, "x = 0.5", "smoke")
    capsys.readouterr()
    rec = record.show(
        "tiny",
        ["tiny_x", "tiny_list", "absent"],
        profile="smoke",
        out_dir=tmp_path / "rec",
    )
    out = capsys.readouterr().out
    assert rec["values"]["tiny_x"] == 0.25
    assert "recorded at profile 'smoke' on CPU (float32)" in out
    assert "Reproduce: python -m gaplab record --profile smoke --chapters tiny" in out
    # the claim table: this build's verdict beside the recorded one
    assert "NOT reproduced" in out and "reproduced" in out
    assert "not computed here" in out and "not recorded" in out


def test_check_claim_and_glue_leave_what_the_recorder_reads(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("GAPLAB_CLAIM_LOG", str(log))
    monkeypatch.setattr(book, "CLAIMS", [])
    book.check_claim("a", True, "e1", "smoke")
    book.check_claim("b", False, "e2", "cpu", not_at_this_scale="too small")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(c["statement"], c["holds"], c["enforced"]) for c in lines] == [
        ("a", True, False),
        ("b", False, False),
    ]
    assert lines[1]["not_at_this_scale"] == "too small"
    book.glue("some_value", 3)
    assert book.GLUED["some_value"] == 3


def test_the_command_skips_what_is_recorded_at_this_commit(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "rec"
    head = record._git("rev-parse", "HEAD")
    stems = ["mad_training", "object_bias"]
    for stem in stems:
        rec = {k: None for k in record._FIELDS} | {
            "schema": 1,
            "chapter": stem,
            "profile": "paper",
            "completed": True,
            "commit": head,
            "changed_files": [],
        }
        (out / "paper").mkdir(parents=True, exist_ok=True)
        (out / "paper" / f"{stem}.json").write_text(json.dumps(rec))

    def refuse(*a, **k):
        raise AssertionError("a recorded chapter was executed again")

    monkeypatch.setattr(record, "record_chapter", refuse)
    assert gaplab_main(["record", "--chapters", *stems, "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("recorded at this commit; skipped") == 2
    assert gaplab_main(["record", "--chapters", "nope", "--out", str(out)]) == 2
    assert "unknown chapters ['nope']" in capsys.readouterr().err


def test_the_command_stops_cleanly_at_its_time_limit(tmp_path, capsys):
    code = gaplab_main(
        [
            "record",
            "--chapters",
            "mad_training",
            "--out",
            str(tmp_path),
            "--max-minutes",
            "0",
        ]
    )
    assert code == 0
    assert (
        "run the same command again to go on from mad_training"
        in capsys.readouterr().out
    )
    assert not (tmp_path / "paper").exists()


def test_committed_records_are_whole_and_name_their_machine():
    # every record the book ships must load, say where it ran, and be for a chapter the book has
    folder = ROOT / "data" / "recorded"
    for path in sorted(folder.glob("*/*.json")) if folder.exists() else []:
        rec = record.load_record(path.stem, path.parent.name)
        assert path.stem in record.chapters()
        assert rec["commit"] and rec["date"] and rec["machine"]["device"]
        assert rec["wall_seconds"] > 0 and rec["values"]
        # a chapter runs to its end only when every claim enforced at its profile held
        enforced = [c["holds"] for c in rec["claims"] if c["enforced"]]
        if rec["completed"]:
            assert all(enforced)
