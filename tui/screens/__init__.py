"""The screens of the TUI, one per file; modals in `modals.py`."""
