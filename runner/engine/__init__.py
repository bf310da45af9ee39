"""The engine: drives conversations through the one model client (`client.ModelClient`), writes
every turn, emits events; a run's lifecycle (start, resume, rerun, cancel, dry run) is `runs`."""
