"""What the start-up hook (feast_sqlreg_hook) does once Feast loads.

- ``feast.infra.registry.sql``: ``SqlRegistry`` becomes NativeSqlRegistry,
  before anything imports it by name (``feast.feature_store`` does, at import
  time). The stock class stays reachable as ``StockSqlRegistry``.
- ``feast.cli.registry``: ``feast registry create-schema`` creates the
  schema with the native core (no SQLAlchemy engine).
"""

import logging

logger = logging.getLogger("feast_sqlreg")

#: Why the native registry is (or is not) active in this process.
status = {"patched": False, "reason": "feast.infra.registry.sql not imported yet"}


def patch(module):
    if module.__name__ == "feast.infra.registry.sql":
        _patch_registry(module)
    elif module.__name__ == "feast.cli.registry":
        _patch_cli(module)


def _patch_registry(module):
    try:
        from feast_sqlreg.registry import NativeSqlRegistry
    except ImportError as e:  # a broken build must not break Feast
        status.update(patched=False, reason=f"native core failed to load: {e}")
        logger.warning("feast_sqlreg: using the stock SQL registry: %s", e)
        return
    module.StockSqlRegistry = module.SqlRegistry
    module.SqlRegistry = NativeSqlRegistry
    status.update(patched=True, reason="installed by feast_sqlreg's start-up hook")


def _patch_cli(module):
    import click

    command = module.registry_cmd.commands.get("create-schema")
    if command is None:
        return

    @click.pass_context
    def create_schema(ctx):
        from feast.infra.registry.sql import SqlRegistryConfig
        from feast.repo_config import load_repo_config
        from feast.repo_operations import cli_check_repo

        from feast_sqlreg._sqlregistry import Store

        repo = ctx.obj["CHDIR"]
        fs_yaml_file = ctx.obj["FS_YAML_FILE"]
        cli_check_repo(repo, fs_yaml_file)
        repo_config = load_repo_config(repo, fs_yaml_file)
        registry_config = repo_config.registry
        if not isinstance(registry_config, SqlRegistryConfig):
            raise click.ClickException(
                "This command only applies to SQL-based registries "
                f"(registry_type='sql'). Current type: '{registry_config.registry_type}'"
            )
        Store(registry_config.path).create_schema()
        click.echo("SQL registry schema created successfully (feast_sqlreg).")

    command.callback = create_schema
