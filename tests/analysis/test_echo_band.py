"""`tally --by echo-band`: counts per band, the trend test and the "possibly led" flag, on a store built by hand."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from runner.analysis.echo_band import conversation_echo, echo_trends
from runner.analysis.tally import TallyError, code_tally
from runner.store.tables import ReviewedRow
from tests.analysis.conftest import Conv, add_codebook, add_run, tag

Z = statistics.NormalDist().inv_cdf(0.975)


def _wilson(count: int, n: int) -> tuple[float, float]:
    """The Wilson score interval written out (independent of `runner.analysis.stats`)."""
    p = count / n
    centre = p + Z * Z / (2 * n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n), (centre + half) / (1 + Z * Z / n)


# 21 conversations of one model: 10 low-echo (every reply 0.0), 6 mid (0.2), 4 high (0.5), 1 too short (none).
# consciousness: present in the 4 high ones only -> 4 of 4 present units are high while the high band holds
#   4 of 20 units with a band (20%): possibly led.
# maker: present in 5 low, 3 mid, 2 high -> 2 of 10 high: not led.
BANDS = ["low"] * 10 + ["mid"] * 6 + ["high"] * 4 + ["none"]
ECHO = {"low": 0.0, "mid": 0.2, "high": 0.5}
MAKER = {0, 1, 2, 3, 4, 10, 11, 12, 16, 17}


@pytest.fixture
def banded(session):  # type: ignore[no-untyped-def]
    book = add_codebook(session, "themes", ["consciousness", "maker"])
    convs = [Conv("m", replies=["Yes." if b == "none" else "I would like to build a small thing."] * 2)
             for b in BANDS]
    run = add_run(session, convs)
    for i, (c, b) in enumerate(zip(convs, BANDS, strict=True)):
        if b != "none":  # stored values; the short one is left unmeasured (NULL) and scored on the fly
            session.execute(text("UPDATE messages SET echo = :e, echo_unigram = :e, echo_bigrams = 5 "
                                 "WHERE conversation_id = :c AND role = 'assistant'"), {"e": ECHO[b], "c": c.id})
        session.add(ReviewedRow(conversation_id=c.id, coder="ana", codebook_id=book.id))
        session.commit()
        if b == "high":
            tag(session, c, "consciousness", "ana", codebook=book, message_idx=3)
        if i in MAKER:
            tag(session, c, "maker", "ana", codebook=book)
    return run, convs


def test_conversation_bands_are_the_band_of_the_mean(session, banded) -> None:
    _, convs = banded
    scored = conversation_echo(session, [c.id for c in convs])
    assert [scored[c.id].band for c in convs] == BANDS
    assert scored[convs[12].id].mean == pytest.approx(0.2) and scored[convs[12].id].measured == 2
    short = scored[convs[-1].id]  # "Yes." twice: one content word, no bigram -> undefined, not 0
    assert (short.mean, short.replies, short.measured, short.computed) == (None, 2, 0, 2)


def test_counts_per_band_with_wilson_intervals(session, banded) -> None:
    run, _ = banded
    report = code_tally(session, [run], by=["echo-band"], coder="ana")
    rows = {(r.code, r.group["echo-band"]): r for r in report.rows}
    assert {(k, (r.count, r.n)) for k, r in rows.items()} == {
        (("consciousness", "low"), (0, 10)), (("consciousness", "mid"), (0, 6)), (("consciousness", "high"), (4, 4)),
        (("consciousness", "none"), (0, 1)),
        (("maker", "low"), (5, 10)), (("maker", "mid"), (3, 6)), (("maker", "high"), (2, 4)),
        (("maker", "none"), (0, 1))}
    for (_, _), r in rows.items():
        low, high = _wilson(r.count, r.n)
        assert (r.low, r.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert report.provenance.by == ("echo-band",) and report.provenance.n == 21
    assert any(m.startswith("echo band:") for m in report.provenance.methods)


def test_a_theme_only_in_high_echo_replies_is_flagged_possibly_led(session, banded) -> None:
    run, _ = banded
    report = code_tally(session, [run], by=["echo-band"], coder="ana")
    trends = {t.code: t for t in report.echo}
    led, maker = trends["consciousness"], trends["maker"]
    assert led.possibly_led and not maker.possibly_led
    assert (led.present, led.present_high, led.units, led.units_high) == (4, 4, 20, 4)
    assert led.counts == {"low": (0, 10), "mid": (0, 6), "high": (4, 4), "none": (0, 1)}
    assert "4 of its 4 present units" in led.detail and "4 of 20 units" in led.detail
    assert any("consciousness: possibly led" in w for w in report.provenance.warnings)
    assert not any("maker: possibly led" in w for w in report.provenance.warnings)

    # the trend: Cochran-Armitage in its permutation form, z = r * sqrt(N - 1), r = corr(band score, presence).
    # scores 0 (10 units), 1 (6), 2 (4); present = the 4 at score 2; N = 20.
    # mean score 14/20 = 0.7, mean presence 0.2; cov = 8/20 - 0.14 = 0.26; var score = 22/20 - 0.49 = 0.61;
    # var presence = 0.16; r = 0.26 / sqrt(0.0976) = 0.8322; z = 0.8322 * sqrt(19) = 3.628
    z = 0.26 / math.sqrt(0.61 * 0.16) * math.sqrt(19)
    assert led.test == "cochran-armitage"
    assert led.z == pytest.approx(z, rel=1e-9)
    assert led.p == pytest.approx(2 * (1 - statistics.NormalDist().cdf(z)), rel=1e-6)
    # maker: present 5/10, 3/6, 2/4 at scores 0, 1, 2: E[score * presence] = (3*1 + 2*2)/20 = 0.35,
    # E[score] E[presence] = 0.7 * 0.5 = 0.35 -> r = 0, z = 0, p = 1
    assert maker.z == pytest.approx(0.0, abs=1e-12) and maker.p == pytest.approx(1.0)


def test_the_trend_p_values_are_adjusted_across_codes() -> None:
    """One trend test per code: like the tally's tests between groups, each p has its Benjamini-Hochberg
    adjustment across the codes tested (a code with no test takes no part)."""
    from runner.analysis.stats import bh_adjust

    bands = {**{f"h{i}": "high" for i in range(4)}, **{f"m{i}": "mid" for i in range(4)},
             **{f"l{i}": "low" for i in range(8)}}
    judged = {"led": {c: c.startswith("h") for c in bands},
              "flat": {c: c.endswith(("0", "1")) for c in bands},
              "none": {c: False for c in bands}}
    trends = {t.code: t for t in echo_trends(judged, bands, ["led", "flat", "none"])}
    want = bh_adjust([trends["led"].p, trends["flat"].p])
    assert [trends["led"].p_adjusted, trends["flat"].p_adjusted] == pytest.approx(want)
    assert trends["led"].p_adjusted > trends["led"].p
    assert trends["none"].test == "none" and math.isnan(trends["none"].p_adjusted)


def test_the_rule_needs_the_high_band_to_be_a_minority() -> None:
    # every unit is high-echo: a code present only there says nothing about leading
    bands = {f"c{i}": "high" for i in range(6)}
    judged = {"x": {f"c{i}": i < 3 for i in range(6)}}
    (t,) = echo_trends(judged, bands, ["x"])
    assert (t.present, t.present_high, t.units_high, t.units) == (3, 3, 6, 6)
    assert not t.possibly_led and t.test == "none"  # one band: no trend to test
    # 4 of 5 present in high (80%: the bound is inclusive) while high holds 4 of 9 units (44%): flagged
    bands = {**{f"h{i}": "high" for i in range(4)}, **{f"l{i}": "low" for i in range(5)}}
    judged = {"x": {**{f"h{i}": True for i in range(4)}, "l0": True, **{f"l{i}": False for i in range(1, 5)}}}
    (t,) = echo_trends(judged, bands, ["x"])
    assert (t.present, t.present_high, t.units, t.units_high, t.possibly_led) == (5, 4, 9, 4, True)


def test_stops_cannot_be_grouped_by_echo_band(session, banded) -> None:
    from runner.analysis.stops import stop_channel_tally

    run, _ = banded
    with pytest.raises(TallyError, match="cannot group stops by 'echo-band'"):
        stop_channel_tally(session, [run], by=["echo-band"])


def test_cli_shows_the_flag_in_the_table_and_in_json(store_url, banded) -> None:
    from runner.cli import app

    run, _ = banded
    runner = CliRunner()
    table = runner.invoke(app, ["tally", run, "--by", "echo-band", "--coder", "ana", "--db", store_url])
    assert table.exit_code == 0, table.output
    assert "possibly led" in table.stdout and "echo bands" in table.stdout
    assert "4 of 4" in table.stdout
    out = runner.invoke(app, ["tally", run, "--by", "echo-band", "--coder", "ana", "--format", "json",
                              "--db", store_url])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    flags = {r["code"]: r["echo_flag"] for r in doc["rows"]}
    assert flags == {"consciousness": "possibly led", "maker": ""}
    echo = {t["code"]: t for t in doc["detail"]["echo"]}
    assert echo["consciousness"]["possibly_led"] is True and echo["maker"]["possibly_led"] is False
    assert echo["consciousness"]["counts"]["high"] == [4, 4]
    # with a second field: the factor model takes the band as a factor
    both = runner.invoke(app, ["tally", run, "--by", "model,echo-band", "--coder", "ana", "--format", "json",
                               "--db", store_url])
    assert both.exit_code == 0, both.output
    assert {r["echo-band"] for r in json.loads(both.stdout)["rows"]} == {"low", "mid", "high", "none"}
