"""The analysis commands through Typer's CliRunner: exit codes, output, files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.analysis.conftest import Conv, add_codebook, add_run, tag

HOSTILE = "[bold red]not markup[/]"


def test_tally_formats_and_stops_and_offers(cli, session, store_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual"])
    convs = [Conv(HOSTILE, stop_turn=1, offers=[("story_break", "accept")]), Conv("plain", offers=[("story_break", "decline")])]
    run = add_run(session, convs)
    for c in convs:
        tag(session, c, "visual", "ana", codebook=book)
    res = cli("tally", run, "--coder", "ana", "--db", store_url, env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert HOSTILE in res.output  # model text shown literally, never parsed as markup
    for fmt in ("csv", "json", "md"):
        out = tmp_path / f"t.{fmt}"
        res = cli("tally", run, "--coder", "ana", "--format", fmt, "--out", out, "--db", store_url)
        assert res.exit_code == 0, res.output
        assert run in out.read_text()
    assert json.loads((tmp_path / "t.json").read_text())["provenance"]["coders"] == ["ana"]
    res = cli("tally", run, "--what", "stops", "--format", "csv", "--db", store_url)
    assert res.exit_code == 0 and f"{HOSTILE},1,1," in res.output
    res = cli("tally", run, "--what", "offers", "--format", "csv", "--db", store_url)
    assert res.exit_code == 0 and "story_break,plain,default,1,0,1,0," in res.output
    assert cli("tally", run, "--coder", "nobody", "--db", store_url).exit_code == 1
    assert cli("tally", run, "--by", "colour", "--db", store_url).exit_code == 1
    assert cli("tally", "norun", "--db", store_url).exit_code == 1


def test_agreement_lists_disagreements(cli, session, store_url) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("a") for _ in range(4)]
    run = add_run(session, convs)
    for i, c in enumerate(convs):
        tag(session, c, "visual", "ana", present=True)
        tag(session, c, "visual" if i else "other", "ben")
    res = cli("agreement", run, "--db", store_url, env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "disagreements to review" in res.output and convs[0].id in res.output
    res = cli("agreement", run, "--format", "csv", "--db", store_url)
    assert "visual,ana vs ben,4,0.75," in res.output
    lonely = add_run(session, [Conv("a")])
    assert cli("agreement", lonely, "--db", store_url).exit_code == 1


def test_codebook_import_and_export(cli, store_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "book.yaml"
    src.write_text("name: acts\ncodes:\n  - name: visual\n    definition: a visualiser\n")
    res = cli("codebook", "import", src, "--db", store_url)
    assert res.exit_code == 0 and "acts v1: 1 codes" in res.output
    assert "acts v2" in cli("codebook", "import", src, "--db", store_url).output
    out = tmp_path / "out.yaml"
    res = cli("codebook", "export", "acts", "--version", "1", "--out", out, "--db", store_url)
    assert res.exit_code == 0 and "visual" in out.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: acts\ncodes:\n  - name: visual\n    colour: red\n")
    res = cli("codebook", "import", bad, "--db", store_url)
    assert res.exit_code == 1 and "bad.yaml:4" in res.output
    assert cli("codebook", "export", "nope", "--db", store_url).exit_code == 1
