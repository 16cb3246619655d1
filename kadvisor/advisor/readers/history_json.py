"""Keras ``History.history`` saved as JSON: ``{"loss": [...], ...}``, optionally under
``"history"``, or a list of per-epoch objects (``[{"loss": ..}, ...]``)."""

from __future__ import annotations

import json

from kadvisor.advisor.readers.run import Run, build
from kadvisor.advisor.readers.safeio import read_text
from kadvisor.errors import InputError


def _show(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def load_json(text: str, source: str):
    """Parses JSON (NaN/Infinity allowed, as Python's json writes them).

    Raises:
        InputError: Invalid JSON, with the line and column.
    """
    try:
        return json.loads(text, parse_constant=lambda c: float(c))
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: invalid JSON ({exc})") from None


def parse_json_text(text: str, source: str = "<text>", columns: dict | None = None) -> Run:
    """Parses a Keras ``History.history`` JSON object.

    Raises:
        InputError: Invalid JSON, not shaped like a history (naming the key and value
            that is not a list of numbers), or no loss/metric key.
    """
    obj = load_json(text, source)
    if isinstance(obj, dict) and isinstance(obj.get("history"), dict):
        obj = obj["history"]
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        keys = list(dict.fromkeys(k for r in obj for k in r))
        obj = {k: [r.get(k) for r in obj] for k in keys}
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"{source}: expected a JSON object of metric name to per-epoch lists, got {_show(obj)}")
    for key, values in obj.items():
        if not isinstance(values, list):
            raise InputError(f"{source}: '{key}' is {_show(values)}; expected a list of per-epoch numbers")
        bad = next((v for v in values if isinstance(v, (list, dict))), None)
        if bad is not None:
            raise InputError(f"{source}: '{key}' holds {type(bad).__name__}s (e.g. {_show(bad)}); "
                             f"expected one number per epoch")
    return build({str(k): v for k, v in obj.items()}, source, [], columns)


def detect(path: str, head: str) -> bool:
    """JSON content (that is not a Hugging Face trainer state)."""
    return head.lstrip().startswith(("{", "["))


def read(path: str, columns: dict | None = None) -> Run:
    """Reads a History JSON file."""
    run = parse_json_text(read_text(path), path, columns)
    run.format = "json"
    return run
