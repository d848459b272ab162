"""Files the tool writes and reads back (saved plans, evaluation baselines): JSON objects with a `format` field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provisioning.errors import ConfigError


def read_tool_file(path: str | Path, *, format_name: str, what: str, expected: str) -> dict[str, Any]:
    """The JSON object in `path` whose `format` is `format_name`; a ConfigError naming `what` when it cannot be
    read, and saying it is not `expected` when it is something else."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != format_name:
        raise ConfigError(f"{path} is not {expected}")
    return data
