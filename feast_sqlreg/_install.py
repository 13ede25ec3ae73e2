"""What the start-up hook (feast_sqlreg_hook) does once Feast loads.

- ``feast.infra.registry.sql``: ``SqlRegistry`` becomes NativeSqlRegistry,
  before anything imports it by name (``feast.feature_store`` does, at import
  time). The stock class stays reachable as ``StockSqlRegistry``.
- ``feast.registry_server``: ``feast serve_registry`` serves reads from
  stored protos (feast_sqlreg.server.NativeRegistryServer). The stock class
  stays reachable as ``StockRegistryServer``.
- ``feast.cli.registry``: ``feast registry create-schema`` creates the
  schema with the native core (no SQLAlchemy engine), on the store
  NativeSqlRegistry would open (``open_store``).
- ``prometheus_client``: feast_sqlreg's metrics collector joins its default
  registry (feast_sqlreg._metrics.install).

How each swap reaches into Feast is feast_sqlreg._internals'.
"""

import importlib
import logging
import sys

from feast_sqlreg import _internals

logger = logging.getLogger("feast_sqlreg")

#: Why the native registry is (or is not) active in this process.
status = {"patched": False, "reason": "feast.infra.registry.sql not imported yet"}


def open_store(registry_config):
    """The Store NativeSqlRegistry opens for a SqlRegistryConfig (see
    feast_sqlreg.registry.open_store): the command line reaches the database
    exactly as Feast does."""
    from feast_sqlreg.registry import open_store as open_native_store

    return open_native_store(registry_config)


def patch(module):
    if module.__name__ == "feast.infra.registry.sql":
        _patch_with(module, "feast_sqlreg.registry", "NativeSqlRegistry", _swap)
    elif module.__name__ == "feast.registry_server":
        _patch_with(module, "feast_sqlreg.server", "NativeRegistryServer", _swap_server)
    elif module.__name__ == "feast.cli.registry":
        _patch_cli(module)
    elif module.__name__ == "prometheus_client":
        _install_metrics()


# Feast modules loaded while the feast_sqlreg module that patches them was
# itself still loading (a program that imports feast_sqlreg.registry before
# Feast, say): owner -> [(module, swap)], patched once the owner has
# finished (loaded()).
_pending = {}


def _patch_with(module, owner, name, swap):
    """swap(module, owner.name), once the owner module can provide it."""
    loading = sys.modules.get(owner)
    if loading is not None and not hasattr(loading, name):
        _pending.setdefault(owner, []).append((module, swap))
        if swap is _swap:
            status.update(patched=False, reason=f"waiting for {owner} to load")
        return
    try:
        replacement = getattr(importlib.import_module(owner), name)
    except ImportError as e:  # a broken build must not break Feast
        if swap is _swap:
            status.update(patched=False, reason=f"native core failed to load: {e}")
        logger.warning("feast_sqlreg: keeping stock %s: %s", module.__name__, e)
        return
    swap(module, replacement)


def loaded(owner, replacement):
    """Called by a feast_sqlreg module that patches Feast once it exists."""
    for module, swap in _pending.pop(owner, ()):
        swap(module, replacement)


def _swap(module, native):
    _internals.swap_sql_registry(module, native)
    status.update(patched=True, reason="installed by feast_sqlreg's start-up hook")


def _swap_server(module, server):
    """start_server() builds the servicer by this module-level name; Feast
    calls start_server() by its module-level name too."""
    _internals.swap_registry_server(module, server, sys.modules[server.__module__].start_server)


def _install_metrics():
    try:
        from feast_sqlreg import _metrics

        _metrics.install()
    except Exception as e:  # metrics must not break an import of prometheus_client
        logger.warning("feast_sqlreg: metrics not installed: %s", e)


def _patch_cli(module):
    _internals.replace_create_schema_command(module, _create_schema)


def _create_schema(registry_config):
    """`feast registry create-schema` on a SQL registry (Feast's own steps
    before this are _internals.replace_create_schema_command's): the schema
    and the change log, with the native core (no SQLAlchemy engine)."""
    import click

    from feast_sqlreg.errors import DatabaseError

    try:
        store = open_store(registry_config)
        store.create_schema()
    except DatabaseError as e:
        # One line, named as FeatureStore would raise it, no traceback.
        raise click.ClickException(f"{type(e).__module__}.{type(e).__name__}: {e}")
    click.echo("SQL registry schema created successfully (feast_sqlreg).")
    try:
        store.install_change_log()
        click.echo("Change log installed: cached registries see every write within a second.")
    except DatabaseError as e:
        click.echo(
            f"Warning: no change log ({e}); cached registries see other processes' "
            "writes after cache_ttl_seconds.",
            err=True,
        )
    store.close()
