"""The Odoo plugin's hook implementations (entry point `odoo` in group `irgov_policy`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from irgov_policy.hookspecs import RegisterCelFunction, RegisterCheck, RegisterRulePack, hookimpl

from .checks import BulkDomainCheck
from .functions import CEL_FUNCTIONS

__all__ = [
    "ODOO_PACK",
    "irgov_register_cel_functions",
    "irgov_register_checks",
    "irgov_register_rule_packs",
    "odoo_pack_path",
]

ODOO_PACK = "odoo.irgov.yaml"


def odoo_pack_path() -> Path:
    """The Odoo rule pack installed with the plugin."""
    return Path(str(resources.files("irgov_odoo").joinpath("packs", ODOO_PACK)))


@hookimpl
def irgov_register_rule_packs(register: RegisterRulePack) -> None:
    register(odoo_pack_path())


@hookimpl
def irgov_register_checks(register: RegisterCheck) -> None:
    register(BulkDomainCheck())


@hookimpl
def irgov_register_cel_functions(register: RegisterCelFunction) -> None:
    for name, function in CEL_FUNCTIONS.items():
        register(name, function)
