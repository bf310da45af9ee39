"""`latitude plan` shows the live and the batch estimates side by side, the batch one labelled with
where its price came from (litellm's `*_batches` prices, or the vendors' 50% rule)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from runner.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _dollars(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"\$([0-9][0-9,]*\.[0-9]{2})", text)]


def test_plan_shows_live_and_batch_estimates(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  mini:\n    model: openai/gpt-4.1-mini\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(ROOT / "protocols/open-latitude-brainstorm.yaml"), "-m", "mini",
                                      "-m", "sim-maker", "--replicates", "500", "--models", str(models)],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "batch cost (max)" in result.output
    line = next(ln for ln in result.output.splitlines() if "gpt-4.1-mini" in ln and "$" in ln)
    live, batch = _dollars(line)
    assert "(price map)" in line and live > 1 and abs(batch - live / 2) <= 0.01  # the map's batch prices: half
    sim = next(ln for ln in result.output.splitlines() if "sim/maker" in ln)
    assert "no batch API" in sim
    total = next(ln for ln in result.output.splitlines() if ln.startswith("on batches"))
    assert "priced by the price map" in total and abs(_dollars(total)[0] - batch) <= 0.01


def test_plan_labels_the_fifty_percent_rule(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from runner.protocol.models_file import ModelAlias
    from runner.providers import batch_price_per_token, live_price_per_token, prices

    price_map = tmp_path / "prices.json"
    price_map.write_text(json.dumps({
        "gpt-nobatch": {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6},
        "gpt-batched": {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6,
                        "input_cost_per_token_batches": 0.9e-6, "output_cost_per_token_batches": 3e-6}}))
    monkeypatch.setenv("LATITUDE_PRICE_MAP", str(price_map))
    prices.price_map.cache_clear()
    prices.model_info.cache_clear()
    try:
        nobatch, batched = ModelAlias(model="openai/gpt-nobatch"), ModelAlias(model="openai/gpt-batched")
        assert live_price_per_token(nobatch) == (2e-6, 8e-6)
        assert batch_price_per_token(nobatch) == ((1e-6, 4e-6), "50% rule")
        assert batch_price_per_token(batched) == ((0.9e-6, 3e-6), "price map")
        assert batch_price_per_token(ModelAlias(model="gemini/gemini-2.0-flash")) is None
        models = tmp_path / "models.yaml"
        models.write_text("models:\n  nb:\n    model: openai/gpt-nobatch\n", encoding="utf-8")
        result = CliRunner().invoke(app, ["plan", str(ROOT / "protocols/open-latitude-brainstorm.yaml"), "-m", "nb",
                                          "--replicates", "500", "--models", str(models)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        line = next(ln for ln in result.output.splitlines() if "gpt-nobatch" in ln and "$" in ln)
        live, batch = _dollars(line)
        assert "(50% rule)" in line and abs(batch - live / 2) <= 0.01
    finally:
        monkeypatch.delenv("LATITUDE_PRICE_MAP")
        prices.price_map.cache_clear()
        prices.model_info.cache_clear()
