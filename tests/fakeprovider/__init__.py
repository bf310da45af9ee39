"""A fake OpenAI + Anthropic provider on 127.0.0.1 for testing latitude
(and litellm) without network access.  See README.md in this folder."""

from .core import (
    FAULT_KINDS,
    Fault,
    Latency,
    RequestRecord,
    Rule,
    count_words,
    default_reply,
    messages_hash,
    prompt_words,
)
from .remote import FakeProviderProcess, RemoteControl
from .server import FakeProvider

__all__ = [
    "FAULT_KINDS",
    "FakeProvider",
    "FakeProviderProcess",
    "Fault",
    "Latency",
    "RemoteControl",
    "RequestRecord",
    "Rule",
    "count_words",
    "default_reply",
    "messages_hash",
    "prompt_words",
]
