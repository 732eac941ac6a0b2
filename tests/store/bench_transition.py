"""What one guarded ``transition`` costs, with appendfsync always vs everysec (not a test; prints rates).

    .venv/bin/python -m tests.store.bench_transition [N]

Three shapes per mode: one call at a time (the latency a single dispatch sees), 64 calls in flight (many status
updates arriving together: the server fsyncs once per event-loop turn for all of them), and ``transition_many``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from aicut.models import TaskRecord, TaskState
from aicut.store import EmbeddedValkey, Store, Transition

Q, D, R = TaskState.QUEUED, TaskState.DISPATCHED, TaskState.RUNNING


async def one_mode(mode: str, n: int) -> dict[str, float]:
    """Rates (transitions per second) for one appendfsync mode on a fresh server."""
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        async with EmbeddedValkey(data_dir, appendfsync=mode) as server:
            store = await Store.connect(server.url, prefix="bench:")
            try:
                await store.create_tasks([TaskRecord(id=f"t{i}") for i in range(n)])

                started = time.perf_counter()
                for i in range(n):
                    assert await store.transition(f"t{i}", 1, [Q], D, fields={"worker": "w1"})
                rates["sequential"] = n / (time.perf_counter() - started)

                gate = asyncio.Semaphore(64)

                async def one(i: int) -> None:
                    async with gate:
                        assert await store.transition(f"t{i}", 1, [D], R)

                started = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(n)))
                rates["64 in flight"] = n / (time.perf_counter() - started)

                started = time.perf_counter()
                done = await store.transition_many(Transition(f"t{i}", 1, (R,), Q, new_attempt=2) for i in range(n))
                rates["transition_many"] = n / (time.perf_counter() - started)
                assert all(done)
            finally:
                await store.purge()
                await store.close()
    return rates


async def main(n: int) -> None:
    results = {mode: await one_mode(mode, n) for mode in ("always", "everysec")}
    print(f"{n} transitions per shape (transitions/s; µs per transition)")
    for shape in results["always"]:
        cells = "   ".join(
            f"{mode:>8}: {results[mode][shape]:8.0f}/s {1e6 / results[mode][shape]:7.0f} µs" for mode in results
        )
        print(f"  {shape:<16} {cells}   always/everysec = {results['always'][shape] / results['everysec'][shape]:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000))
