"""Change detection: a cached registry learns that the database changed.

Triggers on every registry table (installed by Store.install_change_log)
add (id, table, project, name) to feast_sqlreg_changes for each row that
any writer inserts, updates or deletes: the native registry, stock Feast, a
script. ChangeFeed reads what was added since its last look, in one query.

Ids are handed out when a row is written and become visible when its
transaction commits, so a smaller id can appear after a larger one (two
writers, the first commits last). The feed therefore remembers the ids it
has not seen below the largest one it has (holes) and keeps asking from the
oldest hole on, until the hole fills or is older than HOLE_SECONDS (a
rolled-back write leaves a hole that never fills; registry transactions
commit within milliseconds of writing their change rows).
"""

import time

# Rows asked for per look; a backlog this large is read as "re-read all".
LIMIT = 10000
HOLE_SECONDS = 10.0
# Holes this wide (a sequence that jumped) are not tracked id by id.
MAX_SPAN = 100000


class ChangeFeed:
    def __init__(self, store):
        self._store = store
        self.floor = store.changes_head()  # every id <= floor is done with
        self._seen = set()  # ids > floor already reported
        self._holes = {}  # id > floor not seen yet -> monotonic time first missed

    def poll(self):
        """The (table, project, name) keys written since the last poll, or
        None when the feed lost track (then everything must be re-read)."""
        rows = self._store.changes(self.floor, LIMIT)
        if len(rows) >= LIMIT:
            return self._resync()
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
        for row_id in range(self.floor + 1, top + 1):
            if row_id not in self._seen:
                self._holes.setdefault(row_id, now)
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

    def _resync(self):
        self.floor = self._store.changes_head()
        self._seen.clear()
        self._holes.clear()
        return None
