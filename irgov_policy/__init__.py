"""irgov_policy: the governance kernel that decides whether an AI pipeline may execute a plan."""

from ._version import __version__

__all__ = ["__version__"]
