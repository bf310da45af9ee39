"""Provider families: one module per wire format or backend.

`native` speaks the OpenAI chat-completions and Anthropic messages wire formats itself
(the SDKs supply auth, base URLs and exception types); `prices` reads litellm's bundled
price map as data, so a run whose models are all native never imports litellm.
Importing this package imports nothing heavy.
"""

__all__: list[str] = []
