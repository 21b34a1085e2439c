"""Integrations with host applications."""
