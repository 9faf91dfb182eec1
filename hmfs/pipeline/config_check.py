"""A config read and checked against the workflow's schema, one line per error: the key's dotted path, and for a misspelled key the closest valid one."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from hmfs.pipeline.checks import check_grid, check_renamed_keys

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`node` with its local `$ref` (#/$defs/<name>) followed."""
    while isinstance(node, dict) and "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def unknown_keys(config: Any, node: dict[str, Any], schema: dict[str, Any], where: str = "") -> list[str]:
    """One message per key the schema does not allow, with the closest allowed key where one is close."""
    node = _resolve(node, schema)
    if not isinstance(config, dict) or not isinstance(node, dict):
        return []
    allowed = node.get("properties", {})
    problems = []
    for key, value in config.items():
        path = f"{where}.{key}" if where else str(key)
        if key in allowed:
            problems += unknown_keys(value, allowed[key], schema, path)
        elif isinstance(node.get("additionalProperties"), dict):
            problems += unknown_keys(value, node["additionalProperties"], schema, path)
        elif node.get("additionalProperties") is False and allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else f"allowed here: {', '.join(allowed)}"
            problems.append(f"config key `{path}` is not known: {hint}")
    return problems


def check_config_schema(config: dict[str, Any], schema_path: Path = SCHEMA) -> None:
    """ValueError in one line naming the key, before Snakemake's own validation (which prints the schema)."""
    if not Path(schema_path).is_file():  # an installed hmfs without the workflow beside it: nothing to check against
        return
    schema = yaml.safe_load(Path(schema_path).read_text())
    problems = unknown_keys(config, schema, schema)
    if problems:
        raise ValueError("; ".join(problems))
    try:
        import jsonschema  # installed with snakemake
    except ImportError:
        return
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config),
                    key=lambda e: (not e.absolute_path, [str(p) for p in e.absolute_path]))  # named keys first
    if errors:
        lines = [f"config key `{'.'.join(map(str, e.absolute_path)) or '(top level)'}`: {' '.join(str(e.message).split())[:200]}"
                 for e in errors[:4]]
        more = f" (and {len(errors) - 4} more)" if len(errors) > 4 else ""
        raise ValueError("; ".join(lines) + more)


def load_config(path: Path) -> dict:
    """The config at `path`, checked against the workflow's schema (when this checkout has it) and by check_grid."""
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    config = yaml.safe_load(path.read_text())
    try:
        check_renamed_keys(config)
        check_config_schema(config)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    check_grid(config)
    return config
