"""feast_sqlreg: a native, drop-in replacement for Feast's SQL registry.

Install it next to Feast and keep ``registry_type: sql``: every Feast entry
point then uses :class:`feast_sqlreg.registry.NativeSqlRegistry`. Set
``FEAST_SQLREG_DISABLE=1`` to get the stock registry back.

This module stays import-light: the registry (and Feast) load only when used.
"""

__version__ = "0.1.0"

__all__ = ["NativeSqlRegistry", "__version__"]


def __getattr__(name):
    if name == "NativeSqlRegistry":
        from feast_sqlreg.registry import NativeSqlRegistry

        return NativeSqlRegistry
    raise AttributeError(f"module 'feast_sqlreg' has no attribute {name!r}")
