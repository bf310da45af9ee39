"""Talking to a fake provider in another process: an HTTP control client and a
helper that runs ``python -m tests.fakeprovider`` as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

__all__ = ["FakeProviderProcess", "RemoteControl"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class RemoteControl:
    """Sync client for the ``/_control`` endpoints (mirrors FakeProvider's API)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "RemoteControl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, payload: Any) -> Any:
        r = self._client.post(path, json=payload)
        r.raise_for_status()
        return r.json()

    def action(self, action: str, **kw: Any) -> Any:
        return self._post("/_control", {"action": action, **kw})["results"][0]

    def add_rule(self, **rule: Any) -> dict:
        return self.action("add_rule", **rule)

    def inject(self, kind: str | int, count: int | None = 1, model: str | None = None, **kw: Any) -> dict:
        return self.action("inject", kind=str(kind), count=count, model=model, **kw)

    def set_latency(self, **kw: Any) -> dict:
        return self.action("set_latency", **kw)

    def reset(self) -> None:
        self._post("/_control/reset", {})

    def requests(self, since: int = 0) -> list[dict]:
        r = self._client.get("/_control/requests", params={"since": since})
        r.raise_for_status()
        return r.json()

    def state(self) -> dict:
        r = self._client.get("/_control/state")
        r.raise_for_status()
        return r.json()

    def batch_config(self, **kw: Any) -> dict:
        """Set `BatchConfig` fields (tests/fakeprovider/batches.py)."""
        return self.action("batch_config", **kw)

    def batch_finish(self, id: str | None = None, outcome: str = "ended", finished_share: float | None = None) -> list:
        """End one batch (or every open one) now."""
        return self.action("batch_finish", id=id, outcome=outcome, finished_share=finished_share)

    def batches(self, ids: bool = False) -> dict:
        """Batches, config and per-custom_id received counts (`received`, `distinct`, `resubmitted`)."""
        r = self._client.get("/_control/batches", params={"ids": "1" if ids else "0"})
        r.raise_for_status()
        return r.json()


class FakeProviderProcess:
    """``python -m tests.fakeprovider`` in a subprocess (context manager).

    ``.url``, ``.openai_base``, ``.anthropic_base`` and ``.control`` (a
    :class:`RemoteControl`) are available once started.
    """

    def __init__(self, *args: str, port: int = 0, latency_s: float = 0.0, startup_timeout: float = 30.0) -> None:
        self.args = ["--port", str(port), "--latency", str(latency_s), *args]
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.control: RemoteControl | None = None

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base(self) -> str:
        return self.url

    def start(self) -> "FakeProviderProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakeprovider", *self.args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        line = self.proc.stdout.readline().strip()  # first line is the URL
        if not line.startswith("http://"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"fake provider did not start: {line!r} {err}")
        self.url = line
        self.control = RemoteControl(self.url)
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/_control/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("fake provider subprocess not healthy in time")

    def stop(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            self.proc = None

    def __enter__(self) -> "FakeProviderProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
