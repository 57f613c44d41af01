"""The options every inner pytest run of the suite starts from."""

from __future__ import annotations

SHORT_GRACE = ("-o", "leakguard_grace=0.05")
# Inner runs: no cache dir, no pytest-asyncio unless a test asks for it, short grace.
QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:randomly")
