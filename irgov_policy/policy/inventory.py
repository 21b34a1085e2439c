"""What an engine holds: the packs in force, as `irgov packs` prints them and `GET /packs`
answers (one function, so the two faces cannot disagree)."""

from __future__ import annotations

from typing import Any

from .active import pack_set_digest
from .evaluator import PolicyEngine

__all__ = ["pack_set_view", "packs_in_force"]


def packs_in_force(engine: PolicyEngine) -> list[dict[str, Any]]:
    """Each pack in evaluation order: name, version, digest, description, the file it was loaded
    from, how many rules and tier entries it holds, and the CEL engine that runs it."""
    return [
        {
            "name": pack.name,
            "version": pack.version,
            "digest": pack.digest,
            "description": pack.description,
            "path": pack.file,
            "rules": len(pack.rules),
            "tiers": len(pack.tiers),
            "engine": engine.engine_name,
        }
        for pack in engine.packs
    ]


def pack_set_view(engine: PolicyEngine) -> dict[str, Any]:
    """The set an engine holds: its digest (as `GET /packs` names the set in force), the CEL
    engine and each pack (`packs_in_force`)."""
    return {"digest": pack_set_digest(engine), "engine": engine.engine_name, "packs": packs_in_force(engine)}
