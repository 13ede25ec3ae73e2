"""Reading stored objects without paying typeguard's checks twice.

Feast decorates its object classes with typeguard's ``@typechecked``, so
``FeatureView.from_proto`` spends about three quarters of its time checking
the types of values that Feast itself serialized. typeguard's own
``suppress_type_checks()`` switches checks off in every thread of the
process while it is active, which would also let a user's wrongly typed
``Entity(...)`` in another thread through. This module gives the registry a
suppression that holds for the calling thread only:

typeguard's instrumented code asks ``bool(_suppression.type_checks_suppressed)``
on every check. We replace that module-level counter with an object that is
true while typeguard's own (process-wide) count is non-zero, as before, or
while the asking thread is inside ``thread_suppressed()``.
``suppress_type_checks()`` keeps working: it adds to and subtracts from the
process-wide count through ``+=``/``-=``.

``FEAST_SQLREG_TYPE_CHECKS=1`` in the environment keeps every check (the
registry then reads objects as stock does). Where typeguard is missing or
its internals are not the ones this was written against, nothing is
changed and the checks run. The swap itself, and what it relies on in
typeguard, is feast_sqlreg._internals.replace_typeguard_counter.
"""

import contextlib
import os
import threading

from feast_sqlreg import _internals

_local = threading.local()


class _Suppressed:
    """Stands in for typeguard's ``type_checks_suppressed`` integer."""

    __slots__ = ("count",)

    def __init__(self, count: int):
        self.count = count  # typeguard's process-wide count

    def __bool__(self) -> bool:
        return self.count > 0 or getattr(_local, "depth", 0) > 0

    def __iadd__(self, n: int):
        self.count += n
        return self

    def __isub__(self, n: int):
        self.count -= n
        return self

    def __int__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<feast_sqlreg thread-aware type_checks_suppressed {self.count}>"


def _install() -> bool:
    if os.environ.get("FEAST_SQLREG_TYPE_CHECKS", "") not in ("", "0"):
        return False

    def replace(current):
        if isinstance(current, _Suppressed):
            return current  # already in place
        if type(current) is not int:
            return None
        return _Suppressed(current)

    return _internals.replace_typeguard_counter(replace)


#: Whether reads of stored objects skip typeguard's checks in their thread.
ACTIVE = _install()


@contextlib.contextmanager
def thread_suppressed():
    """No typeguard checks in the calling thread while inside (nestable);
    other threads keep theirs."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def thread_state():
    """The per-thread state whose ``depth`` (when > 0) suppresses the checks
    in its thread; for a wrapper that must do what without_type_checks
    does in a frame of its own (feast_sqlreg._metrics.timed)."""
    return _local


def without_type_checks(method):
    """Wraps a registry read: the Feast objects it builds from stored protos
    are built without typeguard's checks in this thread (see the module)."""
    if not ACTIVE:
        return method
    import functools

    @functools.wraps(method)
    def read(*args, **kwargs):
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            return method(*args, **kwargs)
        finally:
            _local.depth -= 1

    return read
