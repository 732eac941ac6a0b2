"""The workers the coordinator knows: their links, what the operator said of them, and their load as it sees it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from aicut.config import WorkerEntry
from aicut.coordinator.links import LinkHandler, LinkOptions, WorkerLink
from aicut.coordinator.scheduler import Outliers
from aicut.models import WorkerState, WorkerView
from generated.aicut.v1 import worker_pb2 as wpb

logger = logging.getLogger(__name__)


def capabilities_of(status: wpb.WorkerStatus | None, labels: tuple[str, ...] = ()) -> frozenset[str]:
    """What a worker can do, as scheduler tags: encoders, "nvdec", "speech", and its labels."""
    tags = set(labels)
    if status is not None:
        caps = status.capabilities
        tags.update(caps.encoders)
        if caps.nvenc:
            tags.add("nvenc")
        if caps.nvdec:
            tags.add("nvdec")
        if caps.speech_model_ready:
            tags.add("speech")
        tags.update(status.labels)
    return frozenset(tags)


@dataclass(slots=True)
class Member:
    """One worker of machines.yaml and the coordinator's bookkeeping for it."""

    entry: WorkerEntry
    link: WorkerLink
    pending: set[str] = field(default_factory=set)    # task ids dispatched, not yet in a snapshot
    cordoned: bool = False
    last_dispatch: float = 0.0
    dispatched: int = 0
    succeeded: int = 0
    failed: int = 0

    def reported(self) -> set[str]:
        status = self.link.status
        return {t.task_id for t in status.tasks} if status is not None and self.link.online else set()

    def busy(self) -> int:
        return len(self.reported() | self.pending)

    def state(self) -> WorkerState:
        if not self.link.online or self.link.status is None:
            return WorkerState.OFFLINE
        return WorkerState(wpb.WorkerState.Name(self.link.status.state))


class Fleet:
    """Members by address; builds the scheduler's :class:`WorkerView` list."""

    def __init__(self, token: str, handler: LinkHandler, outliers: Outliers,
                 link_options: LinkOptions = LinkOptions()) -> None:
        self.token = token
        self.handler = handler
        self.outliers = outliers
        self.link_options = link_options
        self.members: dict[str, Member] = {}

    def __contains__(self, address: str) -> bool:
        return address in self.members

    def get(self, address: str) -> Member | None:
        return self.members.get(address)

    async def reconcile(self, entries: tuple[WorkerEntry, ...]) -> tuple[list[str], list[str]]:
        """Make the members match ``entries`` (machines.yaml); returns (added, removed) addresses."""
        wanted = {e.address: e for e in entries}
        added, removed = [], []
        for address in [a for a in self.members if a not in wanted]:
            member = self.members.pop(address)
            await member.link.close()
            self.outliers.forget(address)
            removed.append(address)
        for address, entry in wanted.items():
            member = self.members.get(address)
            if member is None:
                link = WorkerLink(entry, self.token, self.handler, self.link_options)
                self.members[address] = Member(entry=entry, link=link)
                link.start()
                added.append(address)
            elif member.entry != entry:
                member.entry = entry  # priority, slots or labels changed: takes effect at the next choice
                member.link.entry = entry
        return added, removed

    def views(self, now: float | None = None) -> list[WorkerView]:
        now = time.monotonic() if now is None else now
        out = []
        for address, m in self.members.items():
            status = m.link.status
            # What the worker says it can take, capped by machines.yaml where that names a number.
            reported = status.slots_total if status is not None else 0
            slots = min(x for x in (m.entry.slots, reported) if x) if (m.entry.slots or reported) else 1
            out.append(WorkerView(
                name=address, priority=m.entry.priority, slots=slots, busy=m.busy(), online=m.link.online,
                state=m.state(), cordoned=m.cordoned, ejected_until=self.outliers.ejected_until(address),
                capabilities=capabilities_of(status, m.entry.labels), last_dispatch=m.last_dispatch))
        return out

    async def close(self) -> None:
        for member in self.members.values():
            await member.link.close()
        self.members.clear()
