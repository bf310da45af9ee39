"""Rigour: the countermeasures against fooling oneself, built into the tool.

A finding made with latitude should be hard to fake by accident. This package owns the
defences that are about the researcher rather than the models:

- `registration`: pre-registration. A protocol (with its files and models, secrets
  excluded), its hypotheses, its codebook and its planned analysis are frozen and hashed
  before any run; a run that names the registration has every deviation from it listed and
  stored, never silently allowed (`latitude register`, `latitude run --registration`,
  `latitude deviations`).
- `hypotheses`: the hypotheses file (what is predicted, of which groups, by which test), with
  located errors like protocol errors.
- `report`: `latitude report RUN`: each registered hypothesis's planned test with its n-of-N
  and intervals, supported or not at the registered alpha; the run's deviations; every other
  analysis, marked exploratory.
- `blind`: coding blind to model and condition: what a blind coder may not see and how it is
  hidden, each coder's seeded order, the self-coding check, how each unit was coded.

Modules are imported on use; nothing here imports the CLI or the TUI (an import-linter
contract in `pyproject.toml`).
"""
