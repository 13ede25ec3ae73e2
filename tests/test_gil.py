"""Every database call runs without the GIL: while one thread waits inside
the registry (behind a row lock another connection holds), other Python
threads keep running."""

import threading
import time

import objects as o
from conftest import RawConnection


def count_for(seconds):
    """How far a Python thread counts in `seconds` (needs the GIL)."""
    stop, counter = threading.Event(), [0]

    def spin():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(seconds)
    stop.set()
    t.join()
    return counter[0]


def test_waiting_registry_call_does_not_block_python(make_registry):
    reg = make_registry("native")
    reg.apply_entity(o.entity(), "proj")
    baseline = count_for(0.5)

    blocker = RawConnection(reg)
    blocker.lock_row("entities", "entity_name", "driver")
    done = threading.Event()
    writer = threading.Thread(
        target=lambda: (reg.apply_entity(o.entity(description="new"), "proj"), done.set())
    )
    writer.start()
    time.sleep(0.2)
    during = count_for(0.5)
    waited = not done.is_set()  # the registry call really was waiting
    blocker.rollback()
    blocker.close()
    writer.join(30)
    assert waited and done.is_set()
    # A call that kept the GIL while waiting would leave the spinner near 0.
    assert during > baseline * 0.5, (baseline, during)
    assert reg.get_entity("driver", "proj").description == "new"
