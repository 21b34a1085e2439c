"""Freezes the public API: a change here is a deliberate, reviewed change of the package's contract."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import typing
from pathlib import Path
from typing import Any

import irgov_policy

FROZEN = [
    "Approval", "ApprovalError", "ApprovalKeyError", "ApprovalPage", "ApprovalRecord", "ApprovalRequest", "ApprovalRequestView",
    "ApprovalService", "ApprovalStatus", "ApprovalStore", "ApprovalToken", "BundleError", "BusStatus",
    "Clearance", "ConfigError", "ConflictError", "ConsumeOutcome", "ConsumeResult", "Decision", "DiffAuditResult", "Digest",
    "DigestError", "Event", "EventBatch", "EventBus", "EventError", "EventType", "Finding", "Governance", "GovernanceConfig",
    "GovernanceError", "Grant", "HashBackend", "HashBackendError", "IR", "IRInputError", "IdempotencyConflictError", "InputLimits",
    "InputProblem", "InvalidTTLError", "IrgovError", "MemorySink", "NotClaimantError", "NotEscalatedError", "NotFoundError",
    "PackLoadError", "PluginError", "PolicyEngine", "PolicyError", "PolicyTestLoadError", "RateLimitedError",
    "ReloadResult", "RequestDetails", "SeparationOfDutiesError", "SourceProblem", "Step", "StoreError",
    "StoreTimeoutError", "__version__", "audit",
    "canonical_bytes", "dag_hash", "dag_nodes", "hookimpl", "ir_hash", "load_config", "load_ir", "new_event",
    "open_store", "parse_ir", "step_hash", "verify_digest",
]
INIT = Path(irgov_policy.__file__)


def test_public_api_is_frozen_and_sorted() -> None:
    assert irgov_policy.__all__ == FROZEN
    assert irgov_policy.__all__ == sorted(irgov_policy.__all__)


def test_all_is_derived_from_the_one_mapping() -> None:
    assert irgov_policy.__all__ == sorted([*irgov_policy._WHERE, "__version__"])


def test_the_type_checking_imports_are_exactly_the_mapping() -> None:
    """Type checkers read the imports under TYPE_CHECKING; the runtime reads `_WHERE`: both
    must name the same names from the same modules."""
    tree = ast.parse(INIT.read_text("utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    aliases = [(alias, node.module) for node in block.body if isinstance(node, ast.ImportFrom)
               for alias in node.names]
    assert {alias.name: module for alias, module in aliases} == irgov_policy._WHERE
    # `from .m import X as X` is what mypy --strict counts as an explicit re-export.
    assert [a.name for a, _ in aliases if a.asname != a.name] == []


def test_every_public_name_resolves_from_its_module() -> None:
    for name, module in irgov_policy._WHERE.items():
        value = getattr(irgov_policy, name)
        assert value is getattr(importlib.import_module(f"irgov_policy.{module}"), name), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        irgov_policy.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def _classes_in(tp: Any) -> set[type]:
    found = {tp} if isinstance(tp, type) else set()
    for arg in typing.get_args(tp):
        found |= _classes_in(arg)
    return found


def test_every_type_a_public_method_returns_is_exported() -> None:
    exported = {getattr(irgov_policy, n) for n in irgov_policy.__all__}
    missing: dict[str, str] = {}
    for name in irgov_policy.__all__:
        obj = getattr(irgov_policy, name)
        if inspect.isclass(obj):
            functions = [(f"{name}.{n}", m) for n, m in inspect.getmembers(obj)
                         if not n.startswith("_") and inspect.isfunction(m) or inspect.ismethod(m)]
        elif inspect.isfunction(obj):
            functions = [(name, obj)]
        else:
            continue
        for where, function in functions:
            for cls in _classes_in(typing.get_type_hints(function).get("return")):
                if cls.__module__.startswith("irgov_policy") and cls not in exported:
                    missing[f"{cls.__module__}.{cls.__name__}"] = where
    assert missing == {}


def test_every_error_of_the_errors_module_is_exported() -> None:
    errors = importlib.import_module("irgov_policy.errors")
    for name in errors.__all__:
        assert name in irgov_policy.__all__, name


def _package_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(irgov_policy.__path__, "irgov_policy."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__ and not value.__name__.startswith("_")):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


# The CLI's exit, which click needs to be its own exception type; it never reaches a library caller.
NOT_LIBRARY_ERRORS = {"irgov_policy.cli._common.UsageFailure"}


def test_every_exception_derives_from_irgov_error() -> None:
    classes = _package_exceptions()
    assert len(classes) > 20  # the walk found the package's exceptions
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes
              if not issubclass(c, irgov_policy.IrgovError)]
    assert sorted(strays) == sorted(NOT_LIBRARY_ERRORS)


def test_every_exception_is_in_the_errors_page_and_the_errors_module_tree() -> None:
    page = (INIT.parents[1] / "docs" / "errors.md").read_text("utf-8")
    tree = importlib.import_module("irgov_policy.errors").__doc__ or ""
    for cls in _package_exceptions():
        assert f"`{cls.__name__}`" in page, f"{cls.__name__} is not described in docs/errors.md"
        if issubclass(cls, irgov_policy.IrgovError):
            assert re.search(rf"(?m)^[\s│├└─]*{cls.__name__}\b", tree), f"{cls.__name__} is missing from the tree in errors.py"


def test_audit_is_the_function_even_after_its_subpackage_is_imported() -> None:
    """Importing `irgov_policy.audit` (the kernel does) sets the package attribute of that name;
    `from irgov_policy import audit` must still be the public function."""
    import subprocess
    import sys

    code = ("import inspect, irgov_policy.kernel\nfrom irgov_policy import audit\n"
            "import irgov_policy.audit.nodes\nimport irgov_policy\n"
            "print(inspect.isfunction(audit), irgov_policy.audit is audit)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
