"""StreamStatus: a snapshot at once and on every change, heartbeats, pongs, events kept until acknowledged."""

from __future__ import annotations

import time

from tests.worker.conftest import MakeWorker, Stream, task
from generated.aicut.v1 import worker_pb2 as wpb


async def test_snapshot_on_connect_and_on_every_change(make_worker: MakeWorker, media_server) -> None:
    app, client = await make_worker()
    stream = Stream(client)
    first = await stream.next()
    assert first.WhichOneof("msg") == "status"
    assert first.status.state == wpb.SERVING and first.status.slots_total == 1 and first.status.slots_busy == 0
    await client.submit(task("t-stream", f"{media_server.base_url}/speech.mp4"))
    busy = await stream.next("status", lambda m: m.status.slots_busy == 1)
    assert busy.status.seq > first.status.seq
    assert [t.task_id for t in busy.status.tasks] == ["t-stream"]
    accepted = await stream.event("t-stream", "accepted")
    assert accepted.attempt == 1 and accepted.seq > 0
    done = await stream.event("t-stream", "succeeded")
    assert done.succeeded.result.sources[0].media.duration_s > 1.5
    idle = await stream.next("status", lambda m: m.status.slots_busy == 0)
    assert idle.status.seq > busy.status.seq and not idle.status.tasks
    await stream.close()


async def test_heartbeats_at_least_every_second_and_pongs(make_worker: MakeWorker) -> None:
    _app, client = await make_worker(heartbeat_interval_s=0.5)
    stream = Stream(client)
    await stream.next("status")
    beats = [time.monotonic()]
    for _ in range(4):
        await stream.next("heartbeat", timeout=5)
        beats.append(time.monotonic())
    gaps = [b - a for a, b in zip(beats[1:], beats[2:])]
    assert max(gaps) < 1.0, gaps
    sent = time.time_ns()
    await stream.outgoing.put(wpb.StatusStreamRequest(ping=wpb.Ping(nonce=42, sent_unix_ns=sent)))
    pong = await stream.next("pong", timeout=5)
    assert pong.pong.nonce == 42 and pong.pong.ping_sent_unix_ns == sent and pong.pong.sent_unix_ns >= sent
    await stream.close()


async def test_unacknowledged_events_come_again_and_survive_a_restart(make_worker: MakeWorker, tmp_path,
                                                                      media_server) -> None:
    work = tmp_path / "same"
    app, client = await make_worker(work_dir=work)
    stream = Stream(client)
    await client.submit(task("t-outbox", f"{media_server.base_url}/speech.mp4"))
    done = await stream.event("t-outbox", "succeeded")
    await stream.close()

    # Reconnect without acknowledging: the result is sent again.
    again = Stream(client)
    replayed = await again.event("t-outbox", "succeeded")
    assert replayed.seq == done.seq
    accepted = [m.event for _, m in again.received if m.WhichOneof("msg") == "event"]
    await again.close()

    # A new worker process on the same work dir still has it.
    hurry_app = app
    import asyncio
    hurry = asyncio.Event()
    hurry.set()
    await hurry_app.shutdown(hurry)
    app2, client2 = await make_worker(work_dir=work)
    third = Stream(client2)
    survived = await third.event("t-outbox", "succeeded")
    assert survived.seq == done.seq and survived.succeeded.result.sources[0].media.video[0].width == 160
    # Acknowledge everything seen; the next stream starts clean.
    seqs = [m.event.seq for _, m in third.received if m.WhichOneof("msg") == "event"] + [e.seq for e in accepted]
    await third.outgoing.put(wpb.StatusStreamRequest(ack=wpb.Ack(event_seqs=seqs)))
    await third.next("heartbeat")
    await third.next("heartbeat")
    assert len(app2.node.outbox) == 0
    await third.close()
    fourth = Stream(client2)
    await fourth.next("status")
    await fourth.next("heartbeat")
    assert not [m for _, m in fourth.received if m.WhichOneof("msg") == "event"]
    await fourth.close()
