"""Makes ``registry_type: sql`` use feast_sqlreg in every Python process.

Imported at interpreter start-up by ``feast_sqlreg.pth``, so it must cost
next to nothing in processes that never use Feast: it only puts a finder on
``sys.meta_path`` that watches for four module names. When Feast's SQL
registry module (``feast.infra.registry.sql``), its registry server
(``feast.registry_server``) or its registry CLI (``feast.cli.registry``) is
imported, feast_sqlreg patches them right after they load. When
``prometheus_client`` is imported, feast_sqlreg's metrics join its default
registry (feast_sqlreg._metrics; never by importing it first, which would
decide its multiprocess mode before Feast does). Set
``FEAST_SQLREG_DISABLE=1`` to keep the stock registry.
"""

import os
import sys

_WATCHED = (
    "feast.infra.registry.sql",
    "feast.registry_server",
    "feast.cli.registry",
    "prometheus_client",
)


class _Finder:
    """Wraps the loader of a watched module to patch it once it has run."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in _WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is cls or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None

    @classmethod
    def invalidate_caches(cls):
        pass


class _Loader:
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        from feast_sqlreg import _install

        _install.patch(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _enabled():
    return os.environ.get("FEAST_SQLREG_DISABLE", "").strip().lower() not in (
        "1",
        "true",
        "yes",
        "on",
    )


if _enabled() and _Finder not in sys.meta_path:
    sys.meta_path.insert(0, _Finder)
