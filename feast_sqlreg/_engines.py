"""SQLAlchemy engines on a native registry's databases, made on first use.

Stock's ``SqlRegistry`` keeps two SQLAlchemy engines, ``write_engine`` on
``path`` and ``read_engine`` on ``read_path`` (the write engine itself when
``read_path`` is unset), each made with
``create_engine(url, **sqlalchemy_config_kwargs)``. Users' scripts and
Feast's own tests reach for them to look at or write the registry tables.
The native registry never uses them: its own core talks to the databases.
So they are made the first time one is read, exactly as stock makes them,
and a registry nobody asks for one pays nothing (no engine, no DBAPI module
import, no connection). ``dispose`` (called by ``NativeSqlRegistry.close``)
closes the connections of those made so far; one read after that is made
afresh.

The engines live in the registry's ``__dict__`` under ``_SLOT``, as an
``Engines``; nothing is there until an engine is asked for. SQLAlchemy
masks the password in an engine's repr, and nothing here logs a URL.
"""

import threading
from typing import Any, List, Optional

_SLOT = "_sqlalchemy_engines"
_slot_lock = threading.Lock()


class Engines:
    """The SQLAlchemy engines of one registry configuration, each made once,
    on first use."""

    def __init__(self, registry_config):
        self._config = registry_config
        self._lock = threading.Lock()
        self._write: Optional[Any] = None
        self._read: Optional[Any] = None

    def __repr__(self):
        made = [name for name, e in (("write", self._write), ("read", self._read)) if e is not None]
        return f"<feast_sqlreg Engines made: {', '.join(made) or 'none'}>"

    def _create(self, url: str):
        from sqlalchemy import create_engine

        return create_engine(url, **(self._config.sqlalchemy_config_kwargs or {}))

    def _engine(self, attr: str, url: str):
        """The engine kept in attr, made on url the first time (once, under
        the lock, whichever thread asks first)."""
        engine = getattr(self, attr)
        if engine is None:
            with self._lock:
                if getattr(self, attr) is None:
                    setattr(self, attr, self._create(url))
                engine = getattr(self, attr)
        return engine

    @property
    def write(self):
        """The engine on ``path``."""
        return self._engine("_write", self._config.path)

    @property
    def read(self):
        """The engine on ``read_path``; the write engine when it is unset."""
        if not self._config.read_path:
            return self.write
        return self._engine("_read", self._config.read_path)

    def made(self) -> List[Any]:
        """The engines made so far (write first)."""
        with self._lock:
            return [e for e in (self._write, self._read) if e is not None]

    def dispose(self) -> None:
        """Disposes every engine made so far (closing its pooled
        connections) and forgets it: the next read makes a new one."""
        with self._lock:
            made = [e for e in (self._write, self._read) if e is not None]
            self._write = self._read = None
        for engine in made:
            engine.dispose()


def engines_of(registry) -> Engines:
    """The Engines of a registry, put in its slot on first use."""
    engines = registry.__dict__.get(_SLOT)
    if engines is None:
        with _slot_lock:
            engines = registry.__dict__.get(_SLOT)
            if engines is None:
                engines = Engines(registry.registry_config)
                registry.__dict__[_SLOT] = engines
    return engines


def made(registry) -> List[Any]:
    """The engines a registry has made so far, without making any."""
    engines = registry.__dict__.get(_SLOT)
    return engines.made() if engines is not None else []


def dispose(registry) -> None:
    """Disposes the engines a registry has made, if any."""
    engines = registry.__dict__.get(_SLOT)
    if engines is not None:
        engines.dispose()
