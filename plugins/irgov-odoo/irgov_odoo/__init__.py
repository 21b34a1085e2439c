"""Odoo provider plugin for irgov_policy.

Installs a rule pack with Odoo knowledge beyond the baseline (`odoo.irgov.yaml`), the
bulk-domain check and the CEL functions `odooDomainMatchesAll` and `odooModules`, all through the
`irgov_policy` entry point `odoo`.
"""

from .checks import BulkDomainCheck
from .domains import DomainAnalysis, analyse_domain, domain_matches_all
from .functions import CEL_FUNCTIONS, odoo_domain_matches_all, odoo_modules
from .plugin import ODOO_PACK, odoo_pack_path

__all__ = [
    "CEL_FUNCTIONS",
    "ODOO_PACK",
    "BulkDomainCheck",
    "DomainAnalysis",
    "analyse_domain",
    "domain_matches_all",
    "odoo_domain_matches_all",
    "odoo_modules",
    "odoo_pack_path",
]

__version__ = "0.1.0"
