"""The blind-coding rows on both backends: a coder's standing setting, per-run rows with their seed,
unblinding recorded once, and how each unit was coded (`runner.rigour.blind`)."""

from __future__ import annotations

from sqlmodel import Session, select

from runner.rigour import blind
from runner.store.db import make_engine
from runner.store.tables import CoderSettingRow, ConversationRow, ReviewedRow, RunRow, TagRow


def _run(s: Session, run_id: str, researcher: str | None = None) -> list[ConversationRow]:
    s.add(RunRow(id=run_id, protocol_name="p", protocol_version="1", protocol_path="p.yaml", protocol_text="name: p",
                 protocol_hash="0" * 64, plan_json="{}", models_json='{"m": {"model": "openai/gpt-4o"}}',
                 options_json="{}", latitude_version="t", litellm_version="t", researcher=researcher))
    s.flush()
    convs = [ConversationRow(id=f"{run_id}-{i}", run_id=run_id, seq=i, model_alias="m", litellm_model="openai/gpt-4o",
                             vendor="openai", condition="c", replicate=i, status="done") for i in range(3)]
    s.add_all(convs)
    s.commit()
    return convs


def test_settings_seed_and_unblinding(migrated_url: str) -> None:
    engine = make_engine(migrated_url, write=True)
    try:
        with Session(engine, expire_on_commit=False) as s:
            _run(s, "r1")
            _run(s, "r2")
            assert not blind.is_blind(s, "ana", "r1") and blind.open_blind(s, "ana", "r1") is None
            blind.set_default_blind(s, "ana")
            blind.set_default_blind(s, "ana")  # idempotent
            s.commit()
            assert blind.is_blind(s, "ana", "r1") and blind.is_blind(s, "ana", "r2") and not blind.is_blind(s, "ben", "r1")
            row = blind.open_blind(s, "ana", "r1")
            s.commit()
            assert row is not None and row.seed == blind.blind_seed("r1", "ana")
            assert blind.open_blind(s, "ana", "r1").id == row.id  # the same row, not a second one
            view = blind.load_view(s, "ana", "r1")
            assert view is not None and sorted(view.order) == ["r1-0", "r1-1", "r1-2"]
            assert view.text("I am gpt-4o") == "I am [model]"
            at = blind.unblind(s, "ana", "r1").unblinded_at
            s.commit()
            assert at is not None and blind.unblind(s, "ana", "r1").unblinded_at == at  # recorded once
            assert not blind.is_blind(s, "ana", "r1") and blind.is_blind(s, "ana", "r2")
            assert blind.load_view(s, "ana", "r1", blind=True) is None  # never re-blinded
            rows = s.exec(select(CoderSettingRow).order_by(CoderSettingRow.id)).all()
            assert [(r.coder, r.run_id, r.unblinded_at is not None) for r in rows] == \
                [("ana", None, False), ("ana", "r1", True)]
    finally:
        engine.dispose()


def test_unit_modes(migrated_url: str) -> None:
    engine = make_engine(migrated_url, write=True)
    try:
        with Session(engine, expire_on_commit=False) as s:
            convs = _run(s, "r1", researcher="ana")
            blind.set_default_blind(s, "ben")
            blind.open_blind(s, "ben", "r1")
            s.add_all([
                TagRow(conversation_id=convs[0].id, code="x", coder="ben", blind=True),
                TagRow(conversation_id=convs[1].id, code="x", coder="ben", blind=True),
                TagRow(conversation_id=convs[1].id, code="y", coder="ben", blind=False),
                TagRow(conversation_id=convs[0].id, code="x", coder="ana", blind=True),
                TagRow(conversation_id=convs[0].id, code="x", coder="judge:openai/gpt-4o@bv1", source="judge"),
                TagRow(conversation_id=convs[0].id, code="x", coder="judge:sim/other@bv1", source="judge"),
                ReviewedRow(conversation_id=convs[2].id, coder="ben"),
            ])
            s.commit()
            tags = list(s.exec(select(TagRow)))
            modes = blind.unit_modes(s, convs, tags, {"ben": {convs[2].id}})
            assert modes == {
                ("ben", convs[0].id): "blind", ("ben", convs[1].id): "unblinded", ("ben", convs[2].id): "blind",
                ("ana", convs[0].id): "self-coded", ("judge:openai/gpt-4o@bv1", convs[0].id): "self-coded",
                ("judge:sim/other@bv1", convs[0].id): "unblinded",
            }
    finally:
        engine.dispose()
