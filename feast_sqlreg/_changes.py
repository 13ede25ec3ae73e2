"""Change detection: a cached registry learns that the database changed.

Triggers on every registry table (installed by Store.install_change_log)
add (id, table, project, name) to feast_sqlreg_changes for each row that
any writer inserts, updates or deletes: the native registry, stock Feast, a
script. ChangeFeed reads what was added since its last look, in one query.

Ids are handed out when a row is written and become visible when its
transaction commits, so a smaller id can appear after a larger one (two
writers, the first commits last). The feed therefore remembers the ids it
has not seen below the largest one it has (holes) until the hole fills or
is older than HOLE_SECONDS (a rolled-back write leaves a hole that never
fills; registry transactions commit within milliseconds of writing their
change rows). Each look reads the rows above the largest id seen; the
holes cost one COUNT of the rows between the oldest hole and that id, and
those rows are read again only when the count says a hole filled. Holes
can be most ids: a Galera cluster hands each node every third id
(auto_increment_increment), and the ids the other nodes did not use stay
holes for HOLE_SECONDS.

Poller is the thread that follows one registry's feed and hands what
changed to the registry (NativeSqlRegistry._on_changes).
"""

import logging
import os
import threading
import time
import weakref

from feast_sqlreg import errors

logger = logging.getLogger("feast_sqlreg.registry")

# Seconds between two looks at the change log; 0 turns change detection off.
POLL_SECONDS = float(os.environ.get("FEAST_SQLREG_POLL_SECONDS", "0.5") or 0)
# Change log rows older than this are deleted (by registries that may write).
PRUNE_AFTER_SECONDS = 3600
PRUNE_EVERY_SECONDS = 60

# Rows asked for per look; a backlog this large is read as "re-read all".
LIMIT = 10000
HOLE_SECONDS = 10.0
# Holes this wide (a sequence that jumped) are not tracked id by id.
MAX_SPAN = 100000


class ChangeFeed:
    def __init__(self, store):
        self._store = store
        self.floor = store.changes_head()  # every id <= floor is done with
        self._top = self.floor  # the largest id seen
        self._seen = set()  # ids > floor already reported
        self._holes = {}  # id > floor not seen yet -> monotonic time first missed
        self.rows_read = 0  # change log rows read, in all

    def poll(self):
        """The (table, project, name) keys written since the last poll, or
        None when the feed lost track (then everything must be re-read)."""
        rows = self._store.changes(self._top, LIMIT)
        if len(rows) >= LIMIT:
            return self._resync()
        if self._holes and self._store.changes_count(self.floor, self._top) != len(self._seen):
            # A hole filled (or a row went): the rows between, once again.
            rows = self._store.changes(self.floor, LIMIT)
            if len(rows) >= LIMIT:
                return self._resync()
        self.rows_read += len(rows)
        now = time.monotonic()
        changed = set()
        top = self.floor
        for row_id, table, project, name in rows:
            row_id = int(row_id)
            top = max(top, row_id)
            if row_id not in self._seen:
                self._seen.add(row_id)
                changed.add((table, project, name))
        if top - self.floor > MAX_SPAN:
            return self._resync()
        for row_id in range(self._top + 1, top + 1):
            if row_id not in self._seen:
                self._holes.setdefault(row_id, now)
        self._top = max(self._top, top)
        while True:
            following = self.floor + 1
            if following in self._seen:
                self._seen.discard(following)
            elif following in self._holes and now - self._holes[following] > HOLE_SECONDS:
                pass
            else:
                break
            self._holes.pop(following, None)
            self.floor = following
        for row_id in [h for h in self._holes if h in self._seen]:
            del self._holes[row_id]
        return changed

    def holes(self) -> int:
        """How many ids below the newest seen are still awaited."""
        return len(self._holes)

    def _resync(self):
        self.floor = self._top = self._store.changes_head()
        self._seen.clear()
        self._holes.clear()
        return None


class Poller:
    """The thread that follows one registry's change feed. It holds the
    registry weakly: a registry nobody uses any more is collected, and the
    thread ends."""

    def __init__(self, registry):
        self.pid = os.getpid()
        self._registry = weakref.ref(registry)
        self._feed = registry._feed
        self._stopping = threading.Event()
        self._last_ok = time.monotonic()
        self._failing = False
        #: Looks at the change log that worked, and that failed (metrics).
        self.polls = self.failures = 0
        self._may_prune = True
        self._pruned_at = 0.0
        self._thread = threading.Thread(
            target=self._run, name="feast_sqlreg-changes", daemon=True
        )
        self._thread.start()

    def healthy(self) -> bool:
        return self.lag() < max(3 * POLL_SECONDS, 2.0)

    def lag(self) -> float:
        """Seconds since the change log was last read (and what it said
        handed to the registry) without an error."""
        return time.monotonic() - self._last_ok

    def holes(self) -> int:
        return self._feed.holes()

    def stop(self):
        self._stopping.set()

    def _run(self):
        while not self._stopping.wait(POLL_SECONDS):
            registry = self._registry()
            if registry is None or registry._store.closed:
                return
            try:
                changed = self._feed.poll()
                if changed is None or changed:
                    registry._on_changes(changed)
                self._last_ok = time.monotonic()
                self.polls += 1  # this thread alone writes both counts
                if self._failing:
                    logger.info("feast_sqlreg: change detection on %s is back", registry._store.url)
                    self._failing = False
                self._prune(registry)
            except Exception as e:
                self.failures += 1
                if not self._failing:
                    logger.warning(
                        "feast_sqlreg: change detection on %s failed (%s); the cache "
                        "follows cache_ttl_seconds until it works again",
                        registry._store.url,
                        e,
                    )
                    self._failing = True
            del registry

    def _prune(self, registry):
        now = time.monotonic()
        if not self._may_prune or now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        try:
            registry._raw_store.prune_changes(int(time.time()) - PRUNE_AFTER_SECONDS)
        except errors.DatabaseError as e:  # a read-only user, say
            logger.debug("feast_sqlreg: not pruning the change log: %s", e)
            self._may_prune = False
