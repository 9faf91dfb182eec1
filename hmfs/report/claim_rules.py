"""The claims file (hmfs/paper/claims.yaml): its kinds of claim, loading it checked, and the verdict rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hmfs.names import TABLES

KINDS = ("paired_difference", "small_targets", "convergence", "runtime")
DIRECTIONS = ("greater", "less", "equal")
MEASURES = ("smallest_third", "smallest_minus_largest")
UNITS = {"paired_difference": "mIoU points", "small_targets": "fg IoU points", "convergence": "x", "runtime": "%"}
NULL = {"paired_difference": 0.0, "small_targets": 0.0, "convergence": 1.0, "runtime": 0.0}  # "no difference"


def verdict(low: float, high: float, expect: str, null: float = 0.0, margin: float | None = None) -> str:
    """supported / contradicted / inconclusive of an interval [low, high] of b against a (`hmfs.report.claims_format.RULE`)."""
    if expect not in DIRECTIONS:
        raise ValueError(f"expect must be one of {', '.join(DIRECTIONS)}, got {expect!r}")
    above, below = low > null, high < null
    if expect == "equal":
        if margin is None:
            raise ValueError("a claim of parity (expect: equal) needs a margin")
        if above or below:
            return "contradicted"
        return "supported" if null - margin <= low and high <= null + margin else "inconclusive"
    if not (above or below):
        return "inconclusive"
    return "supported" if above == (expect == "greater") else "contradicted"


def load_claims(path: Path) -> list[dict[str, Any]]:
    """The claims file's entries, checked: ids unique, kinds, tables, directions and per-kind keys known."""
    claims = yaml.safe_load(Path(path).read_text())["claims"]
    seen = set()
    for claim in claims:
        name = claim.get("id", "?")
        missing = [k for k in ("id", "kind", "table", "a", "b", "statement", "expect", "source") if k not in claim]
        if missing:
            raise ValueError(f"{path}: claim {name} lacks {', '.join(missing)}")
        if name in seen:
            raise ValueError(f"{path}: claim id {name} is given twice")
        seen.add(name)
        if claim["kind"] not in KINDS or claim["table"] not in TABLES:
            raise ValueError(f"{path}: claim {name}: kind must be one of {KINDS} and table one of {TABLES}")
        expects = claim["expect"] if isinstance(claim["expect"], dict) else {"*": {"*": claim["expect"]}}
        directions = {d for per_shot in expects.values() for d in per_shot.values()}
        if not directions <= set(DIRECTIONS) or ("equal" in directions and "margin" not in claim):
            raise ValueError(f"{path}: claim {name}: expect must be {DIRECTIONS} (equal needs a margin)")
        if claim["kind"] in ("convergence", "runtime") and "paper_key" not in claim:
            raise ValueError(f"{path}: claim {name}: a {claim['kind']} claim needs paper_key")
        if claim["kind"] == "convergence" and not 0 < claim.get("fraction", 0) <= 1:
            raise ValueError(f"{path}: claim {name}: fraction must be in (0, 1]")
        if claim["kind"] == "small_targets" and claim.get("measure") not in MEASURES:
            raise ValueError(f"{path}: claim {name}: measure must be one of {MEASURES}")
    return claims


def expected(claim: dict[str, Any], backbone: str, shot: int | None) -> str:
    """The direction the paper states for one backbone and shot."""
    if not isinstance(claim["expect"], dict):
        return claim["expect"]
    per_shot = claim["expect"].get(backbone, {})
    return per_shot.get(shot, per_shot.get(str(shot), "greater"))
