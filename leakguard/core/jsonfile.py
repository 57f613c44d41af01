"""Writing a JSON file whole or not at all, and checking up front that it can be written."""

from __future__ import annotations

import json
import os
from typing import Any


def unwritable_reason(path: str) -> str | None:
    """Why ``path`` cannot be written, else ``None``; makes its folder if it is missing."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        return f"cannot make the directory {folder!r} ({exc.strerror})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the directory {folder!r} is not writable"
    if os.path.isdir(path):
        return f"{path!r} is a directory"
    return None


def write_json_atomic(path: str, data: Any) -> None:
    """Write to a temporary file beside ``path`` and rename it: readers never see half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
