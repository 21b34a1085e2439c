"""Imports point down the layers (DESIGN.md): core <- storage <- services <- kernel <- faces.

Every `import` and `from ... import` of the package, including those inside functions, is read
with `ast`, so a lazy import cannot hide an upward dependency."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "irgov_policy"

# Top-level module or subpackage of `irgov_policy` -> its layer. The curated `irgov_policy`
# package itself re-exports names lazily from every layer and is not part of the check.
LAYERS = {
    "_version": 0, "errors": 0, "strict_json": 0, "model": 0, "hashing": 0, "hookspecs": 0, "text_rules": 0,
    "producer": 0,
    "plugins": 0, "plugin_registry": 0, "config": 0,
    "storage": 1,
    "policy": 2, "approvals": 2, "audit": 2, "events": 2, "default_plugins": 2,
    "observability": 0,
    "kernel": 3,
    "cli": 4, "http": 4, "integrations": 4, "testing": 4,
}
LAYER_NAMES = ("core", "storage", "services", "kernel", "face")
SERVICES = 2
# The hook specifications type the objects that every layer hands to plugins (events, findings):
# they may import them for type checking only, which creates no runtime dependency.
TYPE_ONLY_IMPORTS_ALLOWED = {"irgov_policy.hookspecs"}
# Services do not import each other, except that everyone may publish through events.
SERVICES_ANYONE_MAY_USE = {"events"}
# Inside the kernel package, modules point down too: the facade is built on the workflow, the
# builders and the views, and none of those knows the facade.
KERNEL_MODULES = {"views": 0, "build": 0, "gate_replay": 1, "packs": 1, "request_details": 1, "request_events": 1, "requests": 1, "governance": 2}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Absolute names of the `irgov_policy` modules `path` imports."""
    name = _module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    tree = ast.parse(path.read_text("utf-8"), str(path))
    type_only: set[int] = set()
    if name in TYPE_ONLY_IMPORTS_ALLOWED:
        for block in ast.walk(tree):
            if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING":
                type_only.update(id(inner) for statement in block.body for inner in ast.walk(statement))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if node.module is None:
                found.update(f"{target}.{a.name}" for a in node.names)
            else:
                found.add(target)
    return {f for f in found if f == "irgov_policy" or f.startswith("irgov_policy.")}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _kernel_violation(module: str, imported: str) -> list[str]:
    parts, target = module.split("."), imported.split(".")
    if parts[1] != "kernel" or len(parts) < 3 or len(target) < 3:
        return []
    own, other = parts[2], target[2]
    if own not in KERNEL_MODULES:
        return [f"{module}: `{own}` has no place in KERNEL_MODULES of tests/core/test_layers.py"]
    if other in KERNEL_MODULES and KERNEL_MODULES[other] > KERNEL_MODULES[own]:
        return [f"{module} imports {imported}, which is built on it"]
    return []


def _violations(root: Path = PACKAGE) -> list[str]:
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        own = _top(module)
        if own is None:
            continue
        if own not in LAYERS:
            problems.append(f"{module}: `{own}` has no layer in tests/core/test_layers.py")
            continue
        for imported in sorted(_imports(path, root)):
            target = _top(imported)
            if target is None:
                problems.append(f"{module} imports the curated package `irgov_policy`; import the module")
                continue
            if target == own:
                problems.extend(_kernel_violation(module, imported))
                continue
            if target not in LAYERS:
                problems.append(f"{module} imports `{imported}`, which has no layer")
            elif LAYERS[target] > LAYERS[own]:
                problems.append(f"{module} ({LAYER_NAMES[LAYERS[own]]}) imports {imported} "
                                f"({LAYER_NAMES[LAYERS[target]]})")
            elif (LAYERS[own] == LAYERS[target] == SERVICES and target not in SERVICES_ANYONE_MAY_USE
                  and own != "default_plugins"):
                problems.append(f"service {module} imports service {imported}")
    return problems


def test_imports_point_down_the_layers() -> None:
    assert _violations() == []


def test_the_check_sees_lazy_relative_and_sideways_imports(tmp_path: Path) -> None:
    root = tmp_path / "irgov_policy"
    for name, code in {
        "__init__.py": "",
        "model.py": "import irgov_policy.http.router\n",
        "events/__init__.py": "",
        "events/bus.py": "def publish():\n    from ..kernel import Governance\n",
        "approvals/__init__.py": "",
        "approvals/service.py": "from ..policy import evaluator\nfrom ..events import bus\n",
        "policy/__init__.py": "from . import evaluator\n",
        "policy/evaluator.py": "from .. import hashing\n",
        "kernel/__init__.py": "from .governance import Governance\n",
        "kernel/governance.py": "from .requests import ApprovalRequests\n",
        "kernel/requests.py": "from .views import Grant\n",
        "kernel/views.py": "from .governance import Governance\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(code)
    assert _violations(root) == [
        "service irgov_policy.approvals.service imports service irgov_policy.policy",
        "irgov_policy.events.bus (services) imports irgov_policy.kernel (kernel)",
        "irgov_policy.kernel.views imports irgov_policy.kernel.governance, which is built on it",
        "irgov_policy.model (core) imports irgov_policy.http.router (face)",
    ]
