"""The fake provider's batch endpoints on the wire (plain httpx, no SDK): shapes, errors,
expiry, cancellation, size limits, received counts, and the control channel over HTTP."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.fakeprovider import FakeProvider

AUTH = {"authorization": "Bearer sk-fake"}
ANTH = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def _openai_lines(n: int, prefix: str = "r") -> bytes:
    return b"".join(json.dumps({"custom_id": f"{prefix}{i}", "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": "gpt-x", "messages": [{"role": "user", "content": f"q {i}"}]}}).encode()
                    + b"\n" for i in range(n))


def _openai_batch(c: httpx.Client, n: int, **meta: str) -> dict:
    f = c.post("/v1/files", files={"file": ("in.jsonl", _openai_lines(n))}, data={"purpose": "batch"}, headers=AUTH)
    assert f.status_code == 200, f.text
    r = c.post("/v1/batches", json={"input_file_id": f.json()["id"], "endpoint": "/v1/chat/completions",
                                    "completion_window": "24h", "metadata": meta or None}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def _lines(raw: bytes) -> list[dict]:
    return [json.loads(x) for x in raw.splitlines() if x.strip()]


def _anthropic_batch(c: httpx.Client, n: int) -> httpx.Response:
    reqs = [{"custom_id": f"a{i}", "params": {"model": "claude-x", "max_tokens": 5,
                                              "messages": [{"role": "user", "content": f"q {i}"}]}} for i in range(n)]
    return c.post("/v1/messages/batches", json={"requests": reqs}, headers=ANTH)


@pytest.fixture
def client(fake_provider: FakeProvider):
    with httpx.Client(base_url=fake_provider.url, timeout=30) as c:
        yield c


def test_openai_batch_ends_on_a_poll_with_errors_and_counts(fake_provider: FakeProvider, client: httpx.Client) -> None:
    fake_provider.batches.configure(errors=[{"match": "r1", "status": 400}])
    b = _openai_batch(client, 3, latitude_batch="L1")
    assert b["status"] == "validating" and b["metadata"] == {"latitude_batch": "L1"}
    got = client.get(f"/v1/batches/{b['id']}", headers=AUTH).json()
    assert got["status"] == "completed"
    assert got["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    out = _lines(client.get(f"/v1/files/{got['output_file_id']}/content", headers=AUTH).content)
    assert [o["custom_id"] for o in out] == ["r0", "r2"]
    assert out[0]["response"]["status_code"] == 200
    assert out[0]["response"]["body"]["choices"][0]["message"]["content"].startswith("[gpt-x] reply 1:")
    err = _lines(client.get(f"/v1/files/{got['error_file_id']}/content", headers=AUTH).content)
    assert err[0]["custom_id"] == "r1" and err[0]["response"]["status_code"] == 400
    assert err[0]["response"]["body"]["error"]["type"] == "invalid_request_error"
    listed = client.get("/v1/batches", params={"limit": 5}, headers=AUTH).json()
    assert [x["id"] for x in listed["data"]] == [b["id"]] and listed["has_more"] is False


def test_openai_expiry_cancel_and_limits(fake_provider: FakeProvider, client: httpx.Client) -> None:
    fake_provider.batches.configure(expire_finished_share=0.5)
    b = _openai_batch(client, 4)
    got = client.get(f"/v1/batches/{b['id']}", headers=AUTH).json()
    assert got["status"] == "expired"
    assert len(_lines(client.get(f"/v1/files/{got['output_file_id']}/content", headers=AUTH).content)) == 2
    err = _lines(client.get(f"/v1/files/{got['error_file_id']}/content", headers=AUTH).content)
    assert [(e["custom_id"], e["error"]["code"]) for e in err] == [("r2", "batch_expired"), ("r3", "batch_expired")]

    fake_provider.batches.configure(expire_finished_share=None, hold=True, cancel_finished_share=0.25)
    b = _openai_batch(client, 4)
    assert client.get(f"/v1/batches/{b['id']}", headers=AUTH).json()["status"] == "in_progress"
    assert client.post(f"/v1/batches/{b['id']}/cancel", headers=AUTH).json()["status"] == "cancelling"
    got = client.get(f"/v1/batches/{b['id']}", headers=AUTH).json()
    assert got["status"] == "cancelled" and got["error_file_id"] is None
    assert [o["custom_id"] for o in _lines(client.get(f"/v1/files/{got['output_file_id']}/content",
                                                        headers=AUTH).content)] == ["r0"]

    fake_provider.batches.configure(hold=False, max_requests=2)
    f = client.post("/v1/files", files={"file": ("in.jsonl", _openai_lines(3))}, data={"purpose": "batch"},
                    headers=AUTH).json()
    r = client.post("/v1/batches", json={"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                         "completion_window": "24h"}, headers=AUTH)
    assert r.status_code == 400 and "over the limit of 2" in r.json()["error"]["message"]
    assert client.post("/v1/batches", json={}, headers={}).status_code == 401


def test_anthropic_batch_results_and_states(fake_provider: FakeProvider, client: httpx.Client) -> None:
    fake_provider.batches.configure(hold=True, errors=[{"match": "a0", "status": 529}])
    r = _anthropic_batch(client, 3)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["processing_status"] == "in_progress" and b["request_counts"]["processing"] == 3
    assert client.get(f"/v1/messages/batches/{b['id']}/results", headers=ANTH).status_code == 400
    assert fake_provider.batches.finish(b["id"], outcome="expired", finished_share=2 / 3) == [b["id"]]
    got = client.get(f"/v1/messages/batches/{b['id']}", headers=ANTH).json()
    assert got["processing_status"] == "ended"
    assert got["request_counts"] == {"processing": 0, "succeeded": 1, "errored": 1, "canceled": 0, "expired": 1}
    res = _lines(client.get(got["results_url"], headers=ANTH).content)
    assert [(x["custom_id"], x["result"]["type"]) for x in res] == [("a0", "errored"), ("a1", "succeeded"),
                                                                     ("a2", "expired")]
    assert res[0]["result"]["error"]["error"]["type"] == "overloaded_error"

    b2 = _anthropic_batch(client, 2).json()
    assert client.post(f"/v1/messages/batches/{b2['id']}/cancel", headers=ANTH).json()["processing_status"] == "canceling"
    got = client.get(f"/v1/messages/batches/{b2['id']}", headers=ANTH).json()
    assert got["processing_status"] == "ended" and got["request_counts"]["canceled"] == 2
    listed = client.get("/v1/messages/batches", headers=ANTH).json()
    assert [x["id"] for x in listed["data"]] == [b2["id"], b["id"]]

    fake_provider.batches.configure(max_requests=2)
    r = _anthropic_batch(client, 3)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    fake_provider.batches.configure(max_requests=None, max_bytes=100)
    r = _anthropic_batch(client, 3)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_fraction_errors_are_seeded_and_received_counts_show_resubmission(fake_provider: FakeProvider,
                                                                          client: httpx.Client) -> None:
    fake_provider.batches.configure(errors=[{"fraction": 0.3, "seed": 7, "status": 500}])
    counts = []
    for _ in range(2):
        b = _openai_batch(client, 200)
        counts.append(client.get(f"/v1/batches/{b['id']}", headers=AUTH).json()["request_counts"]["failed"])
    assert counts[0] == counts[1] and 30 < counts[0] < 90  # the same ids fail each time, about 30% of them
    snap = fake_provider.batches.snapshot(ids=True)
    assert snap["received"] == 400 and snap["distinct"] == 200 and snap["resubmitted"] == 200
    assert snap["ids"]["r0"] == 2


def test_control_over_http(fake_provider_process) -> None:
    ctl = fake_provider_process.control
    ctl.batch_config(hold=True)
    with httpx.Client(base_url=fake_provider_process.url, timeout=30) as c:
        b = _openai_batch(c, 2)
        assert c.get(f"/v1/batches/{b['id']}", headers=AUTH).json()["status"] == "in_progress"
        assert ctl.batch_finish() == [b["id"]]
        assert c.get(f"/v1/batches/{b['id']}", headers=AUTH).json()["status"] == "completed"
    snap = ctl.batches()
    assert snap["received"] == 2 and snap["resubmitted"] == 0 and snap["config"]["hold"] is True
    ctl.reset()
    assert ctl.batches()["batches"] == [] and ctl.batches()["config"]["hold"] is False


def test_a_large_batch_ends_in_a_worker_thread(fake_provider: FakeProvider, client: httpx.Client,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakeprovider import batches

    monkeypatch.setattr(batches, "SYNC_END", 3)  # "large" means more than 3 requests here
    fake_provider.batches.configure(hold=True)
    b = _openai_batch(client, 6)
    ended = threading.Event()
    real_end = fake_provider.batches._end
    gate = threading.Event()

    def gated_end(batch, **kw):  # holds the worker until the test has seen `finalizing`
        gate.wait(60)
        real_end(batch, **kw)
        ended.set()

    monkeypatch.setattr(fake_provider.batches, "_end", gated_end)
    assert fake_provider.batches.finish(b["id"]) == [b["id"]]
    assert client.get(f"/v1/batches/{b['id']}", headers=AUTH).json()["status"] == "finalizing"
    gate.set()
    assert ended.wait(60)
    got = client.get(f"/v1/batches/{b['id']}", headers=AUTH).json()
    assert got["status"] == "completed" and got["request_counts"]["completed"] == 6
