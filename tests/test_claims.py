"""Glued values and claim checks (gaplab.book.claims): what the chapters record for their pages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gaplab import book


@pytest.fixture
def glued(monkeypatch, tmp_path):
    log = tmp_path / "glue.jsonl"
    monkeypatch.setenv("GAPLAB_GLUE_LOG", str(log))
    monkeypatch.setattr(book.claims, "GLUED", {})
    return lambda: [json.loads(line) for line in log.read_text().splitlines()]


def test_glue_row_glues_each_value_under_the_prefix_in_order(glued):
    table = pd.DataFrame({"l2m": [0.5, 0.25], "k": [1, 2]})
    assert (
        book.glue_row(
            "temperature",
            {
                "l2m": table["l2m"],
                "k": table["k"],
                "rho": np.float64(0.75),
                "low": float(table["l2m"].iloc[0]),
                "best": "relu",
            },
        )
        is None
    )
    want = {
        "temperature_l2m": [0.5, 0.25],
        "temperature_k": [1, 2],
        "temperature_rho": 0.75,
        "temperature_low": 0.5,
        "temperature_best": "relu",
    }
    assert book.claims.GLUED == want
    assert [(g["name"], g["value"]) for g in glued()] == list(want.items())
    assert type(book.claims.GLUED["temperature_k"][0]) is int
    assert type(book.claims.GLUED["temperature_rho"]) is float


def test_glue_row_glues_what_glue_glues(glued):
    values = {"a": np.array([1.0, 2.0]), "b": np.int64(3), "c": [np.float32(0.5)]}
    book.glue_row("one", values)
    for name, value in values.items():
        book.glue(f"two_{name}", value)
    rows = glued()
    assert [r["value"] for r in rows[:3]] == [r["value"] for r in rows[3:]]


def test_glue_refuses_what_a_page_cannot_cite(glued):
    with pytest.raises(TypeError, match="cannot glue a object"):
        book.glue_row("bad", {"x": object()})
