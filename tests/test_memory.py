"""Out of memory: a read that cannot get the memory for its answer raises
MemoryError (never a crash, never a wrong or partial answer), and the same
store answers correctly once memory is back.

A child process caps its own address space (RLIMIT_AS) a little above what
it uses, at several margins, then reads one 12 MB object through get, list
and the whole-registry assembly: the allocations that fail are the client
library's (libpq, MariaDB Connector/C, SQLite) and the store's own."""

import json
import os
import subprocess
import sys
import time

from feast.protos.feast.core.Entity_pb2 import Entity as EntityProto
from feast.protos.feast.core.Project_pb2 import Project as ProjectProto

from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import ENTITY

SIZE = 12 << 20  # under MariaDB's default max_allowed_packet (16 MB)
MARGINS_MB = [2, 6, 12, 20, 28, 36, 48, 64, 96]

CHILD = r"""
import json, os, resource, sys
from feast_sqlreg._sqlregistry import Store
url, kind, margins = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
st = Store(url)
want = len(st.get(kind, "p", "big"))  # connects; the answer before any cap

def size():
    return int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

ops = {
    "get": lambda: len(st.get(kind, "p", "big")),
    "list": lambda: sum(len(proto) for _, proto in st.list(kind, "p")[0]),
    "registry": lambda: len(st.registry()[0]),
}
seen = []
for margin in margins:
    for op, run in ops.items():
        resource.setrlimit(resource.RLIMIT_AS, (size() + (margin << 20), resource.RLIM_INFINITY))
        try:
            outcome = run()
        except MemoryError:
            outcome = "MemoryError"
        except Exception as e:
            outcome = f"{type(e).__name__}: {e}"
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        seen.append([margin, op, outcome, len(st.get(kind, "p", "big"))])
print(json.dumps({"want": want, "seen": seen}))
"""


def test_reads_out_of_memory_raise_memory_error_and_recover(databases):
    url, _ = databases.new()
    store = Store(url)
    store.create_schema()
    entity = EntityProto()
    entity.spec.name, entity.spec.project = "big", "p"
    entity.spec.description = "x" * SIZE
    project = ProjectProto()
    project.spec.name = "p"
    store.apply(ENTITY, "p", "big", entity.SerializeToString(), int(time.time()),
                project_proto=project.SerializeToString())
    store.close()

    # glibc returns large blocks to the system on free only below a fixed
    # mmap threshold; its default one grows after the first large free, and
    # the freed memory would then stay in the address space, out of reach
    # of the next cap.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run([sys.executable, "-c", CHILD, url, str(ENTITY), json.dumps(MARGINS_MB)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr  # a crash would be a signal here
    result = json.loads(proc.stdout)
    want = result["want"]
    assert want == entity.ByteSize()
    registry_size = None
    for margin, op, outcome, after in result["seen"]:
        assert after == want, (margin, op)  # the store recovered
        if op == "registry" and isinstance(outcome, int):
            registry_size = outcome
        assert outcome == "MemoryError" or (op != "registry" and outcome == want) or (
            op == "registry" and isinstance(outcome, int) and outcome > want
        ), (margin, op, outcome)
    for op in ("get", "list", "registry"):
        outcomes = [o for _, name, o, _ in result["seen"] if name == op]
        # The sweep reaches both sides of the limit for every read.
        assert "MemoryError" in outcomes and any(isinstance(o, int) for o in outcomes), (op, outcomes)
    assert registry_size is not None
