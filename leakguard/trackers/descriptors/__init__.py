"""The descriptor trackers (``fds``, ``sockets``, ``ports``) and the scan they share."""
