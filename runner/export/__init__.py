"""Exports: transcripts (jsonl, markdown)."""
