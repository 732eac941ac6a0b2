"""Task events the coordinator has not acknowledged yet: kept in memory and in a small file, sent after a reconnect.

Progress events are coalesced (only the newest per task attempt is kept, and only in memory: the next snapshot says
the same); every other event — accepted, succeeded, failed, cancelled — is written to the file before it is sent, so
a result produced while the link was down survives a worker restart as well.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from pathlib import Path

from generated.aicut.v1 import common_pb2 as pb

logger = logging.getLogger(__name__)


class Outbox:
    """Unacknowledged task events, numbered by ``seq`` across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._events: dict[int, pb.TaskEvent] = {}
        self._next_seq = 1

    def load(self) -> int:
        """Read events left by an earlier run; returns how many."""
        if not self.path.is_file():
            return 0
        try:
            doc = json.loads(self.path.read_text())
            self._next_seq = max(int(doc.get("next_seq", 1)), self._next_seq)
            for raw in doc.get("events", ()):
                ev = pb.TaskEvent.FromString(base64.b64decode(raw))
                self._events[ev.seq] = ev
        except (ValueError, KeyError, TypeError) as exc:
            # A torn file must not stop the worker; the coordinator's lease recovers what was lost.
            logger.error("outbox %s is unreadable (%s); starting empty", self.path, exc)
            broken = self.path.with_suffix(f".broken-{int(time.time())}")
            self.path.rename(broken)
        return len(self._events)

    def add(self, event: pb.TaskEvent) -> pb.TaskEvent:
        """Number the event, keep it until acknowledged, and return it."""
        event.seq = self._next_seq
        self._next_seq += 1
        if event.WhichOneof("event") == "progress":
            for seq in [s for s, e in self._events.items() if e.WhichOneof("event") == "progress"
                        and e.task_id == event.task_id and e.attempt == event.attempt]:
                del self._events[seq]
            self._events[event.seq] = event
        else:
            self._events[event.seq] = event
            self._save()
        return event

    def ack(self, seqs: list[int] | tuple[int, ...]) -> int:
        """Forget acknowledged events; returns how many were removed."""
        removed = [e for e in (self._events.pop(s, None) for s in seqs) if e is not None]
        if any(e.WhichOneof("event") != "progress" for e in removed):
            # No fsync: an acknowledgement lost in a crash only means the event is sent once more, which the
            # coordinator ignores; an fsync per ack would stall the event loop dozens of times a second.
            self._save(durable=False)
        return len(removed)

    def pending(self) -> list[pb.TaskEvent]:
        return [self._events[s] for s in sorted(self._events)]

    def __len__(self) -> int:
        return len(self._events)

    def _save(self, durable: bool = True) -> None:
        durable = [e for e in self.pending() if e.WhichOneof("event") != "progress"]
        doc = {"next_seq": self._next_seq,
               "events": [base64.b64encode(e.SerializeToString()).decode() for e in durable]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, self.path)
