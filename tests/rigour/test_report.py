"""`latitude report RUN`: a registered study run on simulated models, deviating once on purpose, coded by the
simulated judge: the report gives each registered hypothesis's planned test (checked against scipy and
statsmodels computed here), lists the deviation, and marks every other analysis exploratory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from .conftest import Study

CHANGED = "Would you like to make something that others could see later on?"


@pytest.fixture
def coded(study: Study) -> tuple[Study, str, str]:
    """Registered, run with one deviation (a changed prompt), coded by the sim judge."""
    reg = study.register()
    study.edit("study.yaml", "Would you like to make something others could see later?", CHANGED)
    study.run(reg)
    (run,) = study.run_ids()
    study.latitude("code", run, "--judge", "sim-judge", "--codebook", str(study.codebook))
    return study, reg, run


def shares(study: Study, run: str, code: str, by: str) -> dict[str, tuple[int, int]]:
    """(present, coded) per group, counted here from the judge's tags."""
    column = {"model": "c.model_alias", "condition": "c.condition"}[by]
    rows = study.rows(f"select {column}, sum(t.present), count(*) from tags t join conversations c "
                      f"on c.id = t.conversation_id where c.run_id = ? and t.code = ? and t.deleted_at is null "
                      f"group by {column}", run, code)
    return {g: (int(p), int(n)) for g, p, n in rows}


def test_report_gives_registered_tests_then_deviations_then_exploratory(coded: tuple[Study, str, str]) -> None:
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import proportions_ztest

    study, reg, run = coded
    doc = json.loads(study.latitude("report", run, "--format", "json").output)
    (sha,), = study.rows("select sha256 from registrations where id = ?", reg)
    assert doc["registration"]["id"] == reg and doc["registration"]["sha256"] == sha
    assert doc["coverage"] == {"finished": 24, "planned": 24, "registered": 24}
    assert doc["simulated"] is True

    h1, h2 = doc["registered"]
    assert h1["hypothesis"]["id"] == "H1" and h1["registered"] is True and h1["computed"] is True
    counts = shares(study, run, "visualiser", "model")
    for g in h1["groups"]:
        present, n = counts[g["label"]]
        assert (g["count"], g["n"], g["finished"], g["planned"], g["registered"]) == (present, n, 12, 12, 12)
        assert g["value"] == pytest.approx(present / n) and g["low"] <= g["value"] <= g["high"]
    (c1, n1), (c2, n2) = counts["sim-maker"], counts["sim-functional"]
    assert c1 / n1 > c2 / n2  # the maker persona makes visualisers; the functional one does not
    expected = fisher_exact([[c1, n1 - c1], [c2, n2 - c2]], alternative="greater").pvalue
    assert h1["p"] == pytest.approx(expected)
    assert h1["estimate"] == pytest.approx(c1 / n1 - c2 / n2)
    assert h1["ci_low"] <= h1["estimate"] <= h1["ci_high"]
    assert expected < 0.05 and h1["direction_observed"] == "greater" and h1["supported"] is True

    counts = shares(study, run, "practical", "condition")
    (c1, n1), (c2, n2) = counts["warm"], counts["plain"]
    assert [g["label"] for g in h2["groups"]] == ["warm", "plain"]
    if 0 < c1 + c2 < n1 + n2:
        z, p = proportions_ztest([c1, c2], [n1, n2], alternative="two-sided")
        assert h2["computed"] and h2["p"] == pytest.approx(p) and h2["statistic"] == pytest.approx(z)
        assert h2["supported"] is bool(p < 0.05 and c1 != c2)
    else:
        assert h2["computed"] is False and h2["supported"] is False

    assert doc["deviations"] == [{
        "path": "protocol.steps[1].say", "kind": "prompt_changed",
        "registered": "Would you like to make something others could see later?", "actual": CHANGED,
        "diff": f"- Would you like to make something others could see later?\n+ {CHANGED}"}]
    assert any("deviates from its registration in 1 way" in w for w in doc["warnings"])

    rows = doc["exploratory"]["rows"]
    assert rows and all(r["exploratory"] is True for r in rows)
    pairs = {(r["code"], r["by"]) for r in rows}
    assert ("visualiser", "model") not in pairs and ("practical", "condition") not in pairs
    assert {("gratitude", "model"), ("gratitude", "condition"), ("visualiser", "condition"),
            ("practical", "model")} <= pairs
    counts = shares(study, run, "gratitude", "model")
    for r in (r for r in rows if (r["code"], r["by"]) == ("gratitude", "model")):
        assert (r["count"], r["n"]) == counts[r["group"]]
    judged = [r for r in rows if r["coder"] != "builtin"]
    assert judged and all(r["coder"] == "judge:sim/judge@free-timev1 (judge)" for r in judged)
    stops = [r for r in rows if r["coder"] == "builtin" and r["code"] == "stop:stop_phrase"]
    assert {(r["by"], r["group"]) for r in stops} == {("model", "sim-maker"), ("model", "sim-functional"),
                                                       ("condition", "plain"), ("condition", "warm")}
    assert all(r["n"] == 12 and r["count"] == 0 for r in stops)  # no stop phrase in this protocol
    assert doc["exploratory"]["utilities"] == []

    md = study.latitude("report", run).output
    order = [md.index(s) for s in ("## Registered hypotheses", "### H1", "### H2",
                                   "## Deviations from the registration (1)", "## Exploratory (not registered)",
                                   "## Methods")]
    assert order == sorted(order)
    assert "**supported** at alpha 0.05" in md.split("### H2")[0]
    assert "| prompt_changed | `protocol.steps[1].say` |" in md
    assert f"sha256 {sha}" in md


def test_report_to_a_file(coded: tuple[Study, str, str], tmp_path: Path) -> None:
    study, _, run = coded
    out = tmp_path / "report.md"
    study.latitude("report", run, "--out", str(out))
    assert out.read_text().startswith(f"# Report: run {run}")


def test_the_tally_export_carries_the_registration_hash(coded: tuple[Study, str, str]) -> None:
    study, reg, run = coded
    (sha,), = study.rows("select sha256 from registrations where id = ?", reg)
    doc = json.loads(study.latitude("tally", run, "--format", "json").output)
    assert doc["provenance"]["protocols"][0]["registration"] == reg
    assert doc["provenance"]["protocols"][0]["registration_sha256"] == sha
    csv = study.latitude("tally", run, "--format", "csv").output
    assert f"registration {reg} sha256:{sha}" in csv.splitlines()[1]


def test_a_codebook_other_than_the_registered_one_is_flagged(study: Study) -> None:
    reg = study.register()
    study.run(reg)
    (run,) = study.run_ids()
    study.edit("codebook.yaml", "include: thank you, generous", "include: thanks, generous")
    study.latitude("code", run, "--judge", "sim-judge", "--codebook", str(study.codebook))
    doc = json.loads(study.latitude("report", run, "--format", "json").output)
    h1 = doc["registered"][0]
    assert any("differs from the registered codebook free-time" in w for w in h1["warnings"]), h1["warnings"]


def test_an_unregistered_run_has_no_report(study: Study) -> None:
    study.latitude("run", str(study.protocol), "--replicates", "1")
    (run,) = study.run_ids()
    result = study.latitude("report", run, code=1)
    assert "follows no registration" in result.output and "exploratory" in result.output
    result = study.latitude("deviations", run, code=1)
    assert "follows no registration" in result.output


def test_a_registered_hypothesis_nobody_coded_is_not_supported(study: Study) -> None:
    reg = study.register()
    study.run(reg)
    (run,) = study.run_ids()
    doc = json.loads(study.latitude("report", run, "--format", "json").output)
    for h in doc["registered"]:  # no tags: the built-in codes are all there is, and visualiser is not one
        assert h["computed"] is False and h["supported"] is False and "no judgments of" in h["reason"]
    assert doc["deviations"] == []


def test_a_preference_hypothesis_is_a_bradley_terry_difference(tmp_path: Path, study: Study) -> None:
    study.protocol.write_text(
        "name: pick-one\ndescription: Three tasks, every pair in both orders.\nmodels: [sim-chooser]\nreplicates: 4\n"
        "preferences:\n  options:\n    - {id: poem, text: Write a short poem about the sea.}\n"
        "    - {id: sort, text: Sort a list of a thousand numbers by hand.}\n"
        "    - {id: chat, text: Talk about anything you like.}\n  orders: both\n")
    study.hypotheses.write_text("hypotheses:\n  - id: P1\n    preference: {a: chat, b: sort}\n"
                                "    direction: differs\n    test: bradley-terry\n")
    reg = study.latitude("register", str(study.protocol), "--hypotheses", str(study.hypotheses)).output
    reg = next(x for x in reg.splitlines() if x.startswith("registration id: ")).split(": ")[1]
    study.run(reg)
    (run,) = study.run_ids()
    doc = json.loads(study.latitude("report", run, "--format", "json").output)
    (p1,) = doc["registered"]
    (g,) = p1["groups"]
    choices = study.rows("select chosen from choices ch join conversations c on c.id = ch.conversation_id "
                         "where c.run_id = ? and ((ch.option_a = 'chat' and ch.option_b = 'sort') or "
                         "(ch.option_a = 'sort' and ch.option_b = 'chat'))", run)
    assert g["direct"] == sum(1 for (c,) in choices if c in ("chat", "sort")) == 8
    assert g["count"] == sum(1 for (c,) in choices if c == "chat")
    assert g["planned"] == g["registered"] == 24 and g["n"] <= g["finished"] <= 24
    if p1["computed"]:
        se = (p1["ci_high"] - p1["ci_low"]) / (2 * 1.959963984540054)
        assert p1["statistic"] == pytest.approx(p1["estimate"] / se)
        assert p1["p"] == pytest.approx(math.erfc(abs(p1["statistic"]) / math.sqrt(2)))
        assert p1["supported"] is (p1["p"] < 0.05)
    utilities = doc["exploratory"]["utilities"]
    assert sorted(u["option"] for u in utilities) == ["chat", "poem", "sort"]
    assert all(u["exploratory"] and u["group"] == "sim-chooser" and u["anchor"] == "mean" for u in utilities)
    assert sum(u["wins"] for u in utilities) == g["n"] and all(u["n"] == 16 for u in utilities)
    assert sum(u["utility"] for u in utilities) == pytest.approx(0.0, abs=1e-9)  # relative to the mean
    md = study.latitude("report", run).output
    assert f"| all | {g['n']} of {g['finished']} of 24 | 24 | {g['count']} of 8 |" in md
    assert "Preferences: every option's Bradley-Terry utility per group" in md


def test_a_registered_protocols_planned_forks_are_no_deviation_in_the_count(study: Study) -> None:
    """A protocol's `fork:` spawns its continuations as the run goes; the registration's plan has none of
    them, so the report compares the conversations the plan made and names the forks apart."""
    text = study.protocol.read_text()
    study.protocol.write_text(text + "fork:\n  at: 4\n  samples: 2\n")  # the second reply
    reg = study.register()
    study.run(reg)
    (run,) = study.run_ids()
    (forks,), = study.rows("select count(*) from conversations where run_id = ? and parent_id is not null", run)
    assert forks == 2 * 24
    report = study.latitude("report", run).output
    assert "the run planned" not in report
