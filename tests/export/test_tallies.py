"""Tally exports: CSV, JSON (loaded back through its schema) and Markdown, each with provenance."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from sqlmodel import Session

from runner.analysis.tally import agreement_report, code_tally, offer_tally, stop_tally
from runner.export.tallies import SCHEMA_VERSION, TallyExport, render, table_of, to_export
from runner.store.db import make_engine, upgrade
from tests.analysis.conftest import Conv, add_codebook, add_run, tag


@pytest.fixture
def session(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


@pytest.fixture
def run(session):  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual", "useful"])
    convs = ([Conv("a", stop_turn=2, replies=["r", "r", "r"], offers=[("story_break", "accept")]) for _ in range(4)]
             + [Conv("b", replies=["r | pipe", "r"], offers=[("story_break", "decline")]) for _ in range(4)])
    run_id = add_run(session, convs, protocol="open-latitude")
    for i, c in enumerate(convs):
        tag(session, c, "visual" if i < 5 else "useful", "ana", codebook=book)
        tag(session, c, "visual" if i < 4 else "useful", "ben", codebook=book)
    return run_id


def _csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    comments = [line for line in text.splitlines() if line.startswith("# ")]
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return comments, list(csv.DictReader(io.StringIO(body)))


def test_csv_has_provenance_and_every_row(session, run) -> None:  # type: ignore[no-untyped-def]
    report = code_tally(session, [run], coder="ana")
    comments, rows = _csv_rows(render(report, "csv"))
    joined = "\n".join(comments)
    for needle in (f"# runs: {run}", "open-latitude v1 sha256:abababab", "# codebooks: acts v1", "# coders: ana",
                   "# n: 8", "Wilson"):
        assert needle in joined
    assert len(rows) == len(report.rows) == 4
    visual_a = next(r for r in rows if r["code"] == "visual" and r["model"] == "a")
    assert (visual_a["n"], visual_a["count"], float(visual_a["proportion"])) == ("4", "4", 1.0)
    assert visual_a["test"] == "fisher" and float(visual_a["p_adjusted"]) > 0


def test_json_loads_back_through_the_schema(session, run) -> None:  # type: ignore[no-untyped-def]
    for report in (code_tally(session, [run], coder="ana"), stop_tally(session, [run]), offer_tally(session, [run]),
                   agreement_report(session, [run])):
        text = render(report, "json")
        data = json.loads(text)  # strict JSON: no NaN
        doc = TallyExport.model_validate(data)
        assert doc.schema_version == SCHEMA_VERSION
        assert doc.provenance.run_ids == [run] and doc.provenance.protocols[0]["sha256"] == "ab" * 32
        assert doc.columns == table_of(report)[0] and len(doc.rows) == len(table_of(report)[1])
        assert doc.model_dump(mode="json") == data  # nothing lost on the way back
        assert doc.rows == json.loads(json.dumps(to_export(report).rows))
    stops = TallyExport.model_validate_json(render(stop_tally(session, [run]), "json"))
    curve = stops.detail["curves"]["a"]
    assert curve["times"] == [2.0] and curve["survival"] == [0.0]


def test_markdown_table_escapes_and_carries_provenance(session, run) -> None:  # type: ignore[no-untyped-def]
    md = render(agreement_report(session, [run]), "md")
    assert md.startswith("## Tally: Agreement")
    assert f"- **runs**: {run}" in md and "- **coders**: ana, ben" in md
    assert "| code | coders | units |" in md and "Disagreements to review" in md
    offers = render(offer_tally(session, [run]), "md")
    assert "| story_break | a | default | 4 | 4 |" in offers
    stops = render(stop_tally(session, [run]), "md")
    assert "Kaplan-Meier" in stops and "t2: 0.00" in stops


def test_paraphrase_rows_are_long_format(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv(m, condition=p) for m in ("a", "b") for p in ("p1", "p2") for _ in range(3)]
    run_id = add_run(session, convs)
    for i, c in enumerate(convs):
        tag(session, c, "x", "judge:j@b v1", present=i % 2 == 0, source="judge")
    report = code_tally(session, [run_id], coder="judge", paraphrases=["p1", "p2"])
    cols, rows = table_of(report)
    assert "paraphrase" in cols and "spread" in cols
    assert [r["paraphrase"] for r in rows if r["model"] == "a"] == ["p1", "p2", "pooled"]
    pooled = next(r for r in rows if r["model"] == "a" and r["paraphrase"] == "pooled")
    assert pooled["n"] == 6 and not math.isnan(pooled["proportion"])
    assert "pooled" in render(report, "csv")


def test_unknown_format_is_refused(session, run) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        render(stop_tally(session, [run]), "xlsx")  # type: ignore[arg-type]
