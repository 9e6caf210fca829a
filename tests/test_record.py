"""Records: chapters executed at a profile, their glued values and claim verdicts kept with where they ran."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import nbformat
import pytest

from gaplab import book
from gaplab.__main__ import main as gaplab_main
from gaplab.book import claims as claims_module
from gaplab.book import ladder, record

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
    assert rec["trained_runs"] == {}  # not a chapter of the run catalogue
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


def test_a_record_written_by_the_same_command_is_not_a_change(tmp_path, monkeypatch):
    # recording chapter after chapter rewrites committed records; the next record must not call its
    # commit dirty for that, while a changed file of the book still is
    repo = tmp_path / "book"
    (repo / "data" / "recorded" / "long").mkdir(parents=True)
    (repo / "_toc.yml").write_text("root: intro\n")
    (repo / "code.py").write_text("x = 1\n")
    (repo / "data" / "recorded" / "long" / "a.json").write_text("{}\n")

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "start")
    monkeypatch.setenv("GAPLAB_BOOK", str(repo))
    records = repo / "data" / "recorded"
    assert record._changed_files(records) == ""
    (records / "long" / "a.json").write_text('{"new": 1}\n')
    assert record._changed_files(records) == ""
    assert "a.json" in record._changed_files(tmp_path / "elsewhere")
    (repo / "code.py").write_text("x = 2\n")
    assert record._changed_files(records).split() == ["M", "code.py"]


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


def _rung_notebook(folder: Path) -> None:
    """The miniature chapter with a value at every rung: its claim fails at cpu only."""
    path = _notebook(folder)
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("[profile]", ".get(profile, 0.4)")
    nbformat.write(nb, path)


def test_show_sets_every_rung_beside_this_build(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(claims_module, "CLAIMS", [])
    monkeypatch.setattr(claims_module, "GLUED", {})
    book.glue("tiny_x", 0.5)
    book.check_claim("x stays below one half", False, "x = 0.5", "smoke")
    recs = ladder.show("tiny", ["tiny_x"], out_dir=tmp_path)
    assert recs == {p: None for p in ("smoke", "cpu", "long", "paper")}
    out = capsys.readouterr().out
    for p in ("cpu", "long", "paper"):  # smoke is this build; it checks nothing
        assert f"python -m gaplab record --profile {p} --chapters tiny" in out

    _rung_notebook(tmp_path / "nb")
    for p in ("cpu", "long"):
        record.record_chapter(
            "tiny", p, out_dir=tmp_path / "rec", notebooks=tmp_path / "nb"
        )
    shown = []
    monkeypatch.setattr(ladder, "_display", shown.append)
    recs = ladder.show(
        "tiny", ["tiny_x", "tiny_list", "absent"], out_dir=tmp_path / "rec"
    )
    out = " ".join(capsys.readouterr().out.split())  # the lines are wrapped to the page
    assert recs["long"]["values"]["tiny_x"] == 0.4 and recs["paper"] is None
    assert "recorded at profile 'cpu' on CPU (float32)" in out
    assert "the recorded run stopped early: ClaimNotReproduced" in out
    assert "Reproduce: python -m gaplab record --profile long --chapters tiny" in out
    verdicts, values = shown
    assert verdicts.to_dict("records") == [
        {
            "claim": "x stays below one half",
            "smoke (this build)": "not reproduced (not enforced)",
            "cpu": "NOT reproduced",
            "long": "reproduced",
            "paper": "not yet recorded: needs a GPU",
        }
    ]
    # values at the rungs that check claims, and this build's
    assert values.to_dict("records") == [
        {
            "value": "tiny_x",
            "smoke (this build)": "0.5",
            "cpu": "0.75",
            "long": "0.4",
            "paper": "not yet recorded: needs a GPU",
        },
        {
            "value": "tiny_list",
            "smoke (this build)": "not computed here",
            "cpu": "[0.75, 1.5]",
            "long": "[0.4, 0.8]",
            "paper": "not yet recorded: needs a GPU",
        },
        {
            "value": "absent",
            "smoke (this build)": "not computed here",
            "cpu": "not recorded",
            "long": "not recorded",
            "paper": "not yet recorded: needs a GPU",
        },
    ]
    # the chart's frame: numbers only, smoke left out, recorded rungs told apart from this build
    frame = ladder.trend(
        "tiny",
        {"tiny_x": "x", "tiny_list": "a list"},
        build="cpu",
        out_dir=tmp_path / "rec",
        glued={"tiny_x": 0.7},
    )
    assert frame.to_dict("records") == [
        {"rung": "cpu", "measure": "x", "value": 0.7, "source": "this build"},
        {"rung": "long", "measure": "x", "value": 0.4, "source": "recorded"},
    ]
    with pytest.raises(ValueError, match="build profile 'fast'"):
        ladder.trend("tiny", {}, build="fast")


def test_the_scale_page_gathers_the_records(tmp_path):
    assert "No chapter has been recorded yet." in ladder.scale_page(
        ["tiny"], out_dir=tmp_path
    )
    _rung_notebook(tmp_path / "nb")
    for p in ("cpu", "long"):
        record.record_chapter(
            "tiny", p, out_dir=tmp_path / "rec", notebooks=tmp_path / "nb"
        )
    page = ladder.scale_page(["tiny", "other"], out_dir=tmp_path / "rec")
    assert "## tiny" in page and "## other" not in page
    assert (
        "| x stays below one half | not checked | NOT reproduced | reproduced "
        "| not yet recorded: needs a GPU |" in page
    )
    assert "| tiny | long | CPU, " in page and "| yes |" in page
    assert "| tiny | cpu | " in page and "no: ClaimNotReproduced" in page


def test_a_record_keeps_what_training_its_runs_took(tmp_path, monkeypatch):
    from gaplab.book import catalogue
    from gaplab.runs import store

    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "runs"))
    (run,) = catalogue.book_runs("smoke", ["mad_training"])
    assert record.trained_runs("mad_training", "smoke") == {run.key: None}
    catalogue.prepare("smoke", ["mad_training"], progress=False, echo=lambda _: None)
    meta = store.read_meta(store.find_final(run.key).parent)
    assert meta["train_seconds"] > 0
    assert record.trained_runs("mad_training", "smoke") == {
        run.key: meta["train_seconds"]
    }


def _fake_record(out: Path, stem: str, profile: str, trained, cores=2, gpu=None):
    rec = {
        "schema": record.SCHEMA,
        "chapter": stem,
        "profile": profile,
        "completed": True,
        "error": None,
        "date": "2026-12-05T00:00:00+00:00",
        "commit": "0" * 40,
        "changed_files": [],
        "machine": {
            "device": "cpu",
            "gpu": gpu,
            "precision": "float32",
            "cpu_count": cores,
        },
        "wall_seconds": 360.0,
        "command": f"python -m gaplab record --profile {profile} --chapters {stem}",
        "values": {},
        "claims": [
            {
                "statement": "s",
                "holds": True,
                "evidence": "e",
                "enforced": True,
                "profile": profile,
                "not_at_this_scale": None,
            }
        ],
    }
    if trained is not None:
        rec["trained_runs"] = trained
    (out / profile).mkdir(parents=True, exist_ok=True)
    (out / profile / f"{stem}.json").write_text(json.dumps(rec))


def test_the_scale_page_counts_a_shared_run_once(tmp_path):
    _fake_record(tmp_path, "a", "long", {"k1": 3600.0, "k2": 1800.0})
    _fake_record(tmp_path, "b", "long", {"k1": 3600.0, "k3": None})
    _fake_record(tmp_path, "c", "long", None)  # made before records kept their runs
    _fake_record(tmp_path, "a", "cpu", {"k9": 36.0}, cores=4)
    page = ladder.scale_page(["a", "b", "c"], out_dir=tmp_path)
    assert (
        "| a | long | CPU, 2 cores (float32) | 2026-12-05 | `0000000000` | 2, 1.50 h |"
        in page
    )
    assert (
        "| b | long | CPU, 2 cores (float32) | 2026-12-05 | `0000000000` | 2, 1.00 h (1 untimed) |"
        in page
    )
    assert (
        "| c | long | CPU, 2 cores (float32) | 2026-12-05 | `0000000000` | not kept |"
        in page
    )
    # k1 once: 1.5 h on two cores; the executions: two records of 6 min
    assert (
        "At `long`, training the models of 2 records that keep their runs took 1.5 hours "
        "(3.0 core-hours): 2 distinct models, each counted once however many chapters use "
        "it. Executing those chapters on them took 0.2 hours more." in page
    )
    assert "At `cpu`, training the models of 1 record that keep" in page
    assert "0.0 hours (0.0 core-hours): 1 distinct model, each" in page


def test_the_committed_scale_page_is_current():
    # the page is generated from the committed records, so it cannot disagree with them
    page = (ROOT / ladder.SCALE_PAGE).read_text()
    assert page == ladder.scale_page(), (
        "book/scale.md is not what the records give: run python -m gaplab.book.ladder"
    )


def test_the_temperature_settling_reads_the_drive_of_the_logit_scale():
    from gaplab.experiments.temperature import settling
    from gaplab.training.config import TrainConfig, TrainResult
    from gaplab.training.step import lr_at

    cfg = TrainConfig.from_profile("smoke", steps=100, warmup=10, eval_every=10)
    budget = sum(lr_at(s, cfg) for s in range(80, 100))
    # a scale whose log moved by exactly the optimiser's largest step over the last fifth: drive 1
    history = [
        {"step": 0, "logit_scale": 14.0},
        {"step": 80, "logit_scale": 20.0},
        {"step": 100, "logit_scale": 20.0 * math.exp(budget)},
    ]
    out = settling(TrainResult(cfg, None, history))
    assert out["drive"] == pytest.approx(1.0) and out["steps"] == (80, 100)
    assert out["change"] == pytest.approx(1 - 20.0 / history[-1]["logit_scale"])
    # one at rest moves nothing, whatever its learning rate
    history[-1]["logit_scale"] = 20.0
    assert settling(TrainResult(cfg, None, history))["drive"] == 0.0
    with pytest.raises(ValueError, match="no evaluation before and after"):
        settling(TrainResult(cfg, None, history[-1:]))
    frozen = TrainConfig.from_profile("smoke", temperature=10.0)
    with pytest.raises(ValueError, match="learnable temperature"):
        settling(TrainResult(frozen, None, history))


def test_check_claim_and_glue_leave_what_the_recorder_reads(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("GAPLAB_CLAIM_LOG", str(log))
    monkeypatch.setattr(claims_module, "CLAIMS", [])
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


def test_committed_records_are_whole_and_their_enforced_claims_hold():
    # every record the book ships must load, say where it ran, and be for a chapter the book has
    folder = ROOT / "data" / "recorded"
    for path in sorted(folder.glob("*/*.json")) if folder.exists() else []:
        rec = record.load_record(path.stem, path.parent.name)
        assert path.stem in record.chapters()
        assert rec["commit"] and rec["date"] and rec["machine"]["device"]
        assert rec["wall_seconds"] > 0 and rec["values"]
        # a committed record ran to its end, and every claim its chapter enforces at that profile held:
        # a claim that fails at a rung is reported there with its reason (not_at_this_scale), and the
        # chapter recorded again, rather than a stopped record kept
        assert rec["completed"], f"{path}: stopped at {rec['error']}"
        failed = [
            c["statement"] for c in rec["claims"] if c["enforced"] and not c["holds"]
        ]
        assert not failed, f"{path}: enforced claims not reproduced: {failed}"
