"""Analysis: codebooks and tags, judge coding, suggested themes, tallies and statistics."""
