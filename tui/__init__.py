"""latitude's terminal UI (Textual): runs, conversations, transcripts, tagging, codebook,
review queue, tallies and comparison.

Build it with `tui.app.make_app` (the `latitude tui` command and the tests both do).
Importing this package imports nothing heavy; Textual loads with `tui.app`.
"""

__all__: list[str] = []
