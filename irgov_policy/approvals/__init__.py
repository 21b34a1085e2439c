"""Human-in-the-loop approvals: single-use tokens bound to one tenant and one IR hash,
consumed exactly once before they expire, in memory, SQLite or Redis."""

from .factory import open_store
from .records import Approval, ApprovalStatus, ConsumeReason, ConsumeResult, validate_ttl
from .service import ApprovalPage, ApprovalService
from .store import ApprovalStore
from .store_memory import MemoryApprovalStore
from .store_sqlite import SQLiteApprovalStore
from .sweeper import ApprovalSweeper, run_sweeper, sweep_once
from .tokens import (
    KEY_ENV_VAR,
    TOKEN_PREFIX,
    ApprovalKey,
    ApprovalToken,
    KeyRing,
    is_well_formed_token,
    load_keyring,
    new_token,
)

__all__ = [
    "KEY_ENV_VAR",
    "TOKEN_PREFIX",
    "Approval",
    "ApprovalKey",
    "ApprovalPage",
    "ApprovalService",
    "ApprovalStatus",
    "ApprovalStore",
    "ApprovalSweeper",
    "ApprovalToken",
    "ConsumeReason",
    "ConsumeResult",
    "KeyRing",
    "MemoryApprovalStore",
    "SQLiteApprovalStore",
    "is_well_formed_token",
    "load_keyring",
    "new_token",
    "open_store",
    "run_sweeper",
    "sweep_once",
    "validate_ttl",
]
