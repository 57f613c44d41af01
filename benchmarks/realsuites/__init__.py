"""Does leakguard harm real test suites? Each suite run without and with it, test by test.

Run from the repository root (the package index must be reachable for the first set-up):

    python -m benchmarks.realsuites                      # every suite
    python -m benchmarks.realsuites --suite trio --suite anyio
    python -m benchmarks.realsuites --list
    python -m benchmarks.realsuites --out r.json --markdown r.md
    python -m benchmarks.realsuites --suite anyio --leakguard-args='-o leakguard_grace=0.2'

Each suite (``suites.py``: pinned version, test deps, what is left out and why) gets its own venv
under ``--workdir`` (default ``~/.cache/leakguard-realsuites/NAME``) with this repository's
leakguard installed editable, so a run always measures the code checked out here. The suite then
runs twice, one after the other, with the same flags: ``-p no:leakguard`` and ``--leakguard``.
A small recorder plugin (``recorder.py``) writes one JSON line per test phase, so outcomes are
read test by test even when a run aborts. The no-plugin runs are cached per suite recipe and
flags (``--rerun-baseline`` runs them again; ``--repeat-baseline N`` keeps N of them, and a test
whose outcome differs among them is flaky, not changed by leakguard).

A *changed* test is one whose setup/call outcome differs between the runs, that errors at
teardown for a reason other than a leakguard report, or that ran in one run only. An extra
error at teardown from a leak report is a *flag*: listed with leakguard's JSON report, grouped
by what leaked and where it was made.
"""
