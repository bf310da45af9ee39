"""The engine: drives conversations through litellm, writes every turn, emits events."""
