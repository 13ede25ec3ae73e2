"""Exceptions raised by the native registry core.

They follow the DB-API names so they read like the errors of any database
driver; each carries the backend's native code:

- ``sqlstate``: the SQLSTATE where the backend reports one (PostgreSQL,
  MySQL), else ``None``;
- ``code``: the native error number (SQLite extended result code, MySQL
  errno), 0 where there is none.

Messages never contain passwords: URLs in them are masked.
"""


class DatabaseError(Exception):
    """A registry database operation failed."""

    sqlstate = None
    code = 0

    def __reduce__(self):
        # Keep the native codes across pickling (multiprocessing, Ray, ...).
        return (_rebuild, (type(self), self.args, self.sqlstate, self.code))


def _rebuild(cls, args, sqlstate, code):
    exc = cls(*args)
    exc.sqlstate = sqlstate
    exc.code = code
    return exc


class OperationalError(DatabaseError):
    """The database could not do it now: connection lost, lock timeout, I/O."""


class IntegrityError(DatabaseError):
    """A key or constraint was violated (e.g. a version number already taken)."""


class ProgrammingError(DatabaseError):
    """The schema is not what the registry expects (missing table or column)."""


class DataError(DatabaseError):
    """A stored value could not be read: not a valid serialized Feast object."""


class InterfaceError(DatabaseError):
    """The registry core was misused, or ran out of memory."""


class ConfigurationError(DatabaseError, ValueError):
    """The registry configuration (URL, options) is invalid."""
