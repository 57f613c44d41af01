"""The ``tasks`` tracker: pending asyncio tasks and event loops a test left open."""
