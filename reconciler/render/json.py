"""The JSON rendering: the versioned contract (format_version "1"), one document, stable bytes."""

from __future__ import annotations

import json
from typing import Any


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
