"""The core: engine, run state, grace, report, settings, registry, tracker protocol; no hooks."""
