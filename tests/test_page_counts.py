"""The counts the prose pages type by hand (models a chapter trains or loads, exercises, chapters) agree with
the code: each is computed here from the run catalogue or the chapters, so a change there fails this test until
the page is updated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gaplab.book.catalogue import CHAPTERS, book_runs
from gaplab.data.embeddings import load_embeddings
from gaplab.experiments import temperature

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "book" / "course_guide.md"
HOW_TO_RUN = ROOT / "book" / "how_to_run.md"
MEASURE = ROOT / "book" / "measure_your_model.md"
README = ROOT / "README.md"
STEMS = sorted(p.stem for p in (ROOT / "notebooks_py").glob("*.py"))
WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten".split()
    )
}


def _runs(profile="cpu", chapters=CHAPTERS, kind=None, name=None) -> int:
    """How many distinct models ``chapters`` train at ``profile`` from an empty cache (a run two chapters
    share counts once; a run whose key waits on another's result counts as one)."""
    runs = [
        r
        for r in book_runs(profile, chapters, glyphs="procedural")
        if (kind is None or r.kind == kind) and (name is None or name in r.name)
    ]
    return len({r.key for r in runs if r.key}) + sum(r.key is None for r in runs)


#: (page, pattern whose groups hold the counts, the counts the code gives)
COUNTS = {
    "models_compared's zoo (how to run)": (
        HOW_TO_RUN,
        r"it compares (\d+) models of the chapters above",
        lambda: [_runs(chapters=("models_compared",))],
    ),
    "models_compared's zoo (course guide)": (
        GUIDE,
        r"the third loads (\d+) models of the other chapters",
        lambda: [_runs(chapters=("models_compared",))],
    ),
    "session 2: mad_training and imbalance_training": (
        GUIDE,
        r"with the runs cached; (\d+) models \(",
        lambda: [_runs(chapters=("mad_training", "imbalance_training"))],
    ),
    "session 4: cone_temperature and contrastive_gap": (
        GUIDE,
        r"the first two chapters\s+train (\d+) models",
        lambda: [_runs(chapters=("cone_temperature", "contrastive_gap"))],
    ),
    "the whole book (course guide)": (
        GUIDE,
        r"The whole book trains (\d+) models at `cpu`",
        lambda: [_runs()],
    ),
    "the whole book at cpu and paper (how to run)": (
        HOW_TO_RUN,
        r"The whole book at `cpu`, from an empty cache, trains (\d+) models; at `paper` it trains (\d+)"
        r" \((\d+) MAD models, (\d+)\s+of them the frozen-temperature grid, and the (\w+) two-tower",
        lambda: [
            _runs(),
            _runs("paper"),
            _runs("paper", kind="mad"),
            _runs("paper", name="temperature frozen"),
            _runs("paper", kind="same-modality"),
        ],
    ),
    "object bias row (how to run)": (
        HOW_TO_RUN,
        r"\| Object bias \| (\d+):",
        lambda: [_runs(chapters=("object_bias",))],
    ),
    "imbalance training row (how to run)": (
        HOW_TO_RUN,
        r"\| Imbalance training \| (\d+):",
        lambda: [_runs(chapters=("imbalance_training",))],
    ),
    "cone row (how to run)": (
        HOW_TO_RUN,
        r"\| Cone effect and temperature \| (\d+) at frozen temperatures",
        lambda: [len(temperature.LOGIT_SCALES)],
    ),
    "the shipped CLIP pairs (measure your own model)": (
        MEASURE,
        r"the CLIP features of (\d+) MSCOCO image-caption pairs[\s\S]*L2M is [\d.]+ on these (\d+) pairs",
        lambda: [len(load_embeddings("clip")[0])] * 2,
    ),
}


def _as_int(text: str) -> int:
    return int(text) if text.isdigit() else WORDS[text]


@pytest.mark.parametrize("case", sorted(COUNTS))
def test_a_count_on_a_page_is_the_catalogue_s(case):
    page, pattern, expected = COUNTS[case]
    found = re.search(pattern, page.read_text(encoding="utf-8"))
    assert found, (
        f"{page.relative_to(ROOT)} no longer says /{pattern}/: update the page and this test together"
    )
    written = [_as_int(g) for g in found.groups()]
    assert written == expected(), (
        f"{page.relative_to(ROOT)} ({case}) writes {written}, the run catalogue gives "
        f"{expected()}: update the page"
    )


def test_the_course_guide_lists_every_chapter_with_its_number_of_exercises():
    rows = dict(
        re.findall(
            r"^\| \{doc\}`\.\./notebooks/(\w+)` \|[^\n]*\| (\d+) \|$",
            GUIDE.read_text(encoding="utf-8"),
            re.M,
        )
    )
    assert sorted(rows) == STEMS
    for stem, written in rows.items():
        source = (ROOT / "notebooks_py" / f"{stem}.py").read_text(encoding="utf-8")
        assert int(written) == source.count("```{exercise}"), stem


def test_the_readme_lists_every_chapter():
    listed = re.findall(
        r"^\| `notebooks/(\w+)\.ipynb` \|", README.read_text(encoding="utf-8"), re.M
    )
    assert sorted(listed) == STEMS


def test_the_bfloat16_paragraph_quotes_its_measurement():
    import json

    text = " ".join(HOW_TO_RUN.read_text().split())
    m = re.search(r"`benchmarks/results/(precision-cpu-[\d-]+\.json)`", text)
    assert m, "how_to_run no longer names the precision measurement it quotes"
    rec = json.loads((ROOT / "benchmarks" / "results" / m.group(1)).read_text())
    sec = rec["seconds"]
    assert (
        f"took {sec['float32']:.0f} s in float32 and {sec['bfloat16']:.0f} s in bfloat16, "
        f"{rec['bfloat16_speed_up']:.2f} times as fast" in text
    )
    big = rec["largest_difference"]
    assert (
        f"RMG by at most {big['rmg']:.4f}, image MOAD by {big['moad_img']:.4f}, "
        f"L2M by {big['l2m']:.4f} and the logit scale by {big['logit_scale']:.3f}"
        in text
    )
    assert f"commit {rec['commit'][:7]}" in text
    assert f"the {len(rec['runs'])} runs of the imbalance grid" in text
    t32, t16 = rec["trends"]["float32"], rec["trends"]["bfloat16"]
    same = all(f"{t32[m]:.2f}" == f"{t16[m]:.2f}" for m in t32)
    assert same == ("was the same both ways for every trend measure" in text)
    assert f"RMG {t32['rmg']:.2f}, L2M {t32['l2m']:.2f}" in text
    assert rec["same_verdicts"] == ("gave the same verdicts" in text)
