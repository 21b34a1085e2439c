"""CEL engines behind one interface: `celpy` (cel-python) and `cel-cpp` (cel-expr-python)."""

from .base import (
    DECLARED_VARIABLES,
    CelCompileError,
    CelEngine,
    CelEvalError,
    available_engines,
    create_engine,
)

__all__ = [
    "DECLARED_VARIABLES",
    "CelCompileError",
    "CelEngine",
    "CelEvalError",
    "available_engines",
    "create_engine",
]
