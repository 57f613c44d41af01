"""The ``processes`` tracker: child processes, who spawned them, and stopping them safely."""
