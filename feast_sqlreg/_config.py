"""A SqlRegistryConfig's SQLAlchemy options as the native core takes them.

Users configure the registry for SQLAlchemy (``sqlalchemy_config_kwargs``:
pool options, ``connect_args``); the native Store takes the pool options
under the same names and the connection options as URL query options.
"""

import logging
import threading
from typing import Any, Dict, Optional

logger = logging.getLogger("feast_sqlreg.registry")

# sqlalchemy_config_kwargs that have a meaning for the native pool.
# Store() takes them under the same names.
_POOL_KWARGS = {"pool_size", "max_overflow", "pool_timeout", "pool_recycle", "pool_pre_ping"}
_warned_kwargs = set()
_warned_lock = threading.Lock()


def store_options(config_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Store() keyword arguments from sqlalchemy_config_kwargs; warns once per
    process about each key that has no meaning here. connect_args are
    handled by with_connect_args."""
    opts: Dict[str, Any] = {}
    for key, value in (config_kwargs or {}).items():
        if key in _POOL_KWARGS:
            if key == "pool_recycle" and value is None:
                continue
            opts[key] = value
        elif key == "connect_args" or (key == "echo" and not value):
            continue
        else:
            with _warned_lock:
                if key in _warned_kwargs:
                    continue
                _warned_kwargs.add(key)
            logger.warning(
                "feast_sqlreg ignores sqlalchemy_config_kwargs[%r]: it has no "
                "meaning for the native registry",
                key,
            )
    return opts


def with_connect_args(url: Optional[str], connect_args: Optional[Dict[str, Any]]):
    """The URL with SQLAlchemy's connect_args added as query options, which
    is where the native drivers read them (libpq keywords, MySQL's charset,
    ssl_*, timeouts; SQLite's timeout). PyMySQL's nested ssl={...} becomes
    ssl_<key>. Options already in the URL win; unknown ones are rejected by
    the driver with a ConfigurationError naming them."""
    if not url or not connect_args:
        return url
    from urllib.parse import quote

    flat: Dict[str, Any] = {}
    for key, value in connect_args.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                flat[f"{key}_{sub}"] = subvalue
        else:
            flat[key] = value
    query = _query_of(url)
    present = {part.split("=", 1)[0] for part in (query or "").split("&") if part}
    extra = []
    for key, value in flat.items():
        if key in present:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        extra.append(f"{quote(str(key))}={quote(str(value), safe='')}")
    if not extra:
        return url
    return url + ("?" if query is None else "&") + "&".join(extra)


def _query_of(url: str) -> Optional[str]:
    """The query string of a database URL, or None, split as SQLAlchemy (and
    the C core) split it: a password may hold an unescaped '?', so the query
    starts after the '@' that ends the credentials (the core refuses URLs
    with a second raw '@')."""
    rest = url.split("://", 1)[-1]
    at = rest.rfind("@")
    mark = rest.find("?", at + 1)
    return None if mark < 0 else rest[mark + 1 :]
