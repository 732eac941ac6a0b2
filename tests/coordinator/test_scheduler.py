"""Tests for aicut.coordinator.scheduler: the dispatch choice (examples and exhaustive invariants) and ejection."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from fractions import Fraction

import pytest

from aicut.coordinator.scheduler import (
    OutlierOptions,
    Outliers,
    choose_worker,
    explain,
    rank_key,
    skip_reasons,
)
from aicut.models import WorkerState, WorkerView

NOW = 100.0
SERVING, DRAINING, NOT_SERVING, OFFLINE = (WorkerState.SERVING, WorkerState.DRAINING, WorkerState.NOT_SERVING,
                                           WorkerState.OFFLINE)
NONE: frozenset[str] = frozenset()


def up(name: str, **kw: object) -> WorkerView:
    """An online SERVING worker; keyword arguments override any field."""
    fields: dict[str, object] = {"online": True, "state": SERVING}
    fields.update(kw)
    return WorkerView(name=name, **fields)  # type: ignore[arg-type]


# --- the reference the exhaustive tests check against, written from the policy text, not from the code ------------

def eligible(w: WorkerView, now: float, needs: frozenset[str]) -> bool:
    return (w.online and w.state == SERVING and not w.cordoned and not now < w.ejected_until
            and needs.issubset(w.capabilities) and w.busy < w.slots)


def check_choice(workers: Sequence[WorkerView], now: float = NOW, needs: frozenset[str] = NONE) -> None:
    """Every invariant of the policy for one set of workers."""
    chosen = choose_worker(workers, now, needs)
    ok = [w for w in workers if eligible(w, now, needs)]
    if not ok:
        assert chosen is None, (workers, chosen)
        return
    # Eligible, with a free slot; one of the given objects.
    assert chosen is not None, workers
    assert any(chosen is w for w in ok), (workers, chosen)
    assert chosen.busy < chosen.slots, chosen
    idle = [w for w in ok if w.busy == 0]
    if idle:
        # An idle eligible worker always beats a busy one; among idle ones the lowest priority number wins.
        assert chosen.busy == 0, (workers, chosen)
        assert chosen.priority == min(w.priority for w in idle), (workers, chosen)
        tied = [w for w in idle if w.priority == chosen.priority]
    else:
        # Nobody idle: the lowest load (busy/slots, exact fractions here), then the lowest priority number.
        load = Fraction(chosen.busy, chosen.slots)
        assert load == min(Fraction(w.busy, w.slots) for w in ok), (workers, chosen)
        same_load = [w for w in ok if Fraction(w.busy, w.slots) == load]
        assert chosen.priority == min(w.priority for w in same_load), (workers, chosen)
        tied = [w for w in same_load if w.priority == chosen.priority]
    # Ties: least recently used, then name.
    assert chosen.last_dispatch == min(w.last_dispatch for w in tied), (workers, chosen)
    assert chosen.name == min(w.name for w in tied if w.last_dispatch == chosen.last_dispatch), (workers, chosen)
    # The answer does not depend on the order of the list.
    assert choose_worker(list(reversed(workers)), now, needs) is chosen, workers


def check_explain(workers: Sequence[WorkerView], now: float = NOW, needs: frozenset[str] = NONE) -> None:
    """explain() agrees with choose_worker(): rank 1 is the choice, the skipped are exactly the ineligible."""
    lines = explain(workers, now, needs)
    assert [name for name, _ in lines] == [w.name for w in workers]
    chosen = choose_worker(workers, now, needs)
    ranks = []
    for w, (_, why) in zip(workers, lines):
        if eligible(w, now, needs):
            assert why.startswith("rank "), why
            ranks.append(int(why.split()[1]))
            if why.startswith("rank 1 "):
                assert w is chosen
        else:
            assert why.startswith("skipped: ") and why != "skipped: ", why
    assert sorted(ranks) == list(range(1, len(ranks) + 1))
    assert (chosen is None) == (not ranks)


# --- readable examples: the seed's rules -----------------------------------------------------------------------

def test_idle_priority_1_beats_idle_priority_2() -> None:
    gpu = up("gpu:8005", priority=1, capabilities=frozenset({"nvenc"}))
    cpu = up("cpu:8005", priority=2)
    assert choose_worker([cpu, gpu], NOW) is gpu


def test_idle_beats_busy_even_with_better_priority() -> None:
    busy_gpu = up("gpu:8005", priority=1, slots=4, busy=1)
    idle_cpu = up("cpu:8005", priority=2)
    assert choose_worker([busy_gpu, idle_cpu], NOW) is idle_cpu


def test_when_all_busy_fewest_tasks_wins_before_priority() -> None:
    a = up("a:8005", priority=1, slots=4, busy=3)
    b = up("b:8005", priority=2, slots=4, busy=1)
    assert choose_worker([a, b], NOW) is b


def test_when_all_busy_equal_load_goes_to_priority() -> None:
    a = up("a:8005", priority=2, slots=2, busy=1)
    b = up("b:8005", priority=1, slots=4, busy=2)    # the same load, 1/2
    assert choose_worker([a, b], NOW) is b


def test_load_is_normalised_by_slots() -> None:
    # Raw counts would pick the 2-slot worker (1 task < 3) and fill it; 3/8 is the lighter load.
    small = up("small:8005", slots=2, busy=1)
    big = up("big:8005", slots=8, busy=3)
    assert choose_worker([small, big], NOW) is big


def test_offline_skipped() -> None:
    off = WorkerView(name="a:8005", priority=1)              # the defaults: offline, OFFLINE
    on = up("b:8005", priority=2)
    assert choose_worker([off, on], NOW) is on
    assert choose_worker([off], NOW) is None


@pytest.mark.parametrize("kw", [
    {"online": False},
    {"state": DRAINING},
    {"state": NOT_SERVING},
    {"state": OFFLINE},
    {"cordoned": True},
    {"ejected_until": NOW + 0.001},
    {"busy": 1, "slots": 1},
    {"busy": 0, "slots": 0},
])
def test_each_skip_rule(kw: dict[str, object]) -> None:
    assert choose_worker([up("a:8005", **kw)], NOW) is None
    assert skip_reasons(up("a:8005", **kw), NOW)


def test_ejection_ends_exactly_at_ejected_until() -> None:
    w = up("a:8005", ejected_until=NOW)
    assert choose_worker([w], NOW) is w
    assert choose_worker([w], NOW - 0.001) is None


def test_full_workers_mean_the_task_waits() -> None:
    workers = [up("a:8005", slots=1, busy=1), up("b:8005", slots=2, busy=2)]
    assert choose_worker(workers, NOW) is None


def test_capabilities() -> None:
    gpu = up("gpu:8005", priority=2, capabilities=frozenset({"nvenc", "speech"}))
    cpu = up("cpu:8005", priority=1, capabilities=frozenset({"x264", "speech"}))
    assert choose_worker([gpu, cpu], NOW) is cpu
    assert choose_worker([gpu, cpu], NOW, frozenset({"speech"})) is cpu
    assert choose_worker([gpu, cpu], NOW, frozenset({"nvenc"})) is gpu
    assert choose_worker([gpu, cpu], NOW, frozenset({"nvenc", "x264"})) is None


def test_ties_go_to_least_recently_used_then_name() -> None:
    a = up("a:8005", last_dispatch=50.0)
    b = up("b:8005", last_dispatch=40.0)
    c = up("c:8005", last_dispatch=40.0)
    assert choose_worker([a, b, c], NOW) is b
    assert choose_worker([c, b, a], NOW) is b


def test_round_robin_between_equal_workers() -> None:
    """Dispatching with LRU ties spreads tasks over equal workers (each finishes before the next dispatch)."""
    workers = {n: up(n) for n in ("a:8005", "b:8005", "c:8005")}
    picks = []
    for t in range(6):
        w = choose_worker(list(workers.values()), NOW + t)
        assert w is not None
        picks.append(w.name)
        workers[w.name] = up(w.name, last_dispatch=NOW + t)
    assert picks == ["a:8005", "b:8005", "c:8005"] * 2


def test_explain_reads_well() -> None:
    workers = [
        up("gpu:8005", priority=1, slots=2, busy=1),
        up("cpu:8005", priority=2),
        WorkerView(name="gone:8005"),
        up("sick:8005", cordoned=True, ejected_until=NOW + 12.0, state=DRAINING),
        up("full:8005", busy=1),
        up("old:8005", capabilities=frozenset({"x264"})),
    ]
    assert explain(workers, NOW) == [
        ("gpu:8005", "rank 3 (busy 1/2, priority 1)"),
        ("cpu:8005", "rank 2 (idle, priority 2)"),
        ("gone:8005", "skipped: offline"),
        ("sick:8005", "skipped: draining, cordoned, ejected for another 12.0 s"),
        ("full:8005", "skipped: full 1/1"),
        ("old:8005", "rank 1 (idle, priority 1)"),
    ]
    assert dict(explain(workers, NOW, frozenset({"nvenc"})))["gpu:8005"] == "skipped: lacks nvenc"


def test_rank_key_orders_idle_first() -> None:
    assert rank_key(up("a", busy=0, slots=1, priority=2)) < rank_key(up("b", busy=1, slots=100, priority=1))


# --- exhaustive invariants --------------------------------------------------------------------------------------

def all_single_workers(name: str) -> Iterator[WorkerView]:
    """Every worker over all fields, including the edges: ejection ending now, zero slots, labels."""
    for priority, busy, slots, online, state, cordoned, ejected_until, caps, last in itertools.product(
            (1, 2), (0, 1, 2), (0, 1, 2), (True, False), tuple(WorkerState), (False, True),
            (0.0, NOW - 1, NOW, NOW + 1), (NONE, frozenset({"nvenc"}), frozenset({"nvenc", "x264"})), (0.0, 1.0)):
        yield WorkerView(name=name, priority=priority, slots=slots, busy=busy, online=online, state=state,
                         cordoned=cordoned, ejected_until=ejected_until, capabilities=caps, last_dispatch=last)


def test_exhaustive_one_worker_eligibility() -> None:
    """choose_worker([w]) is w exactly when w is eligible, and skip_reasons agrees: every field, every edge."""
    n = 0
    for w in all_single_workers("a"):
        for needs in (NONE, frozenset({"nvenc"}), frozenset({"nvenc", "x264"}), frozenset({"speech"})):
            ok = eligible(w, NOW, needs)
            assert (choose_worker([w], NOW, needs) is w) is ok, (w, needs)
            assert (skip_reasons(w, NOW, needs) == ()) is ok, (w, needs)
            n += 1
    assert n == 2 * 3 * 3 * 2 * 4 * 2 * 4 * 3 * 2 * 4


def brief_workers(name: str) -> list[WorkerView]:
    """priority {1,2} × busy {0,1,2} × slots {1,2} × online × SERVING/DRAINING/NOT_SERVING × cordoned × ejected × LRU."""
    return [WorkerView(name=name, priority=p, busy=b, slots=s, online=on, state=st, cordoned=c,
                       ejected_until=NOW + 1 if ej else 0.0, last_dispatch=last)
            for p, b, s, on, st, c, ej, last in itertools.product(
                (1, 2), (0, 1, 2), (1, 2), (True, False), (SERVING, DRAINING, NOT_SERVING), (False, True),
                (False, True), (0.0, 1.0))]


def test_exhaustive_two_workers() -> None:
    """Every pair over the full field grid (576² = 331,776 cases)."""
    a_all, b_all = brief_workers("a"), brief_workers("b")
    n = 0
    for a in a_all:
        for b in b_all:
            check_choice((a, b))
            n += 1
    assert n == 576 ** 2


def test_exhaustive_two_workers_explain() -> None:
    """explain() agrees with choose_worker() on every pair of the grid without the LRU field (288² cases)."""
    a_all = [w for w in brief_workers("a") if w.last_dispatch == 0.0]
    b_all = [w for w in brief_workers("b") if w.last_dispatch == 0.0]
    for a in a_all:
        for b in b_all:
            check_explain((a, b))


def test_exhaustive_two_workers_capabilities() -> None:
    """Capabilities × needs with the load and priority grid (27,648 cases)."""
    caps = (NONE, frozenset({"nvenc"}), frozenset({"x264"}), frozenset({"nvenc", "x264"}))
    grid = [(p, b, s, c, last) for p, b, s, c, last in itertools.product(
        (1, 2), (0, 1, 2), (1, 2), caps, (0.0, 1.0))]

    def make(name: str, p: int, b: int, s: int, c: frozenset[str], last: float) -> WorkerView:
        return up(name, priority=p, busy=b, slots=s, capabilities=c, last_dispatch=last)

    workers_a = [make("a", *g) for g in grid]
    workers_b = [make("b", *g) for g in grid]
    for needs in (NONE, frozenset({"nvenc"}), frozenset({"nvenc", "x264"})):
        for a in workers_a:
            for b in workers_b:
                check_choice((a, b), NOW, needs)
                check_explain((a, b), NOW, needs)


def test_exhaustive_three_workers() -> None:
    """Three workers: priority × (busy, slots) × LRU × {eligible, one blocker each} (48³ = 110,592 cases).

    Each worker has its own blocker kind (a offline, b draining, c ejected) so three-way ranking is covered with every
    subset of eligible workers; the single- and two-worker tests cover every blocker on its own.
    """
    blockers = {"a": {"online": False, "state": OFFLINE}, "b": {"state": DRAINING},
                "c": {"ejected_until": NOW + 5}}
    loads = ((0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (1, 4))    # (busy, slots)

    def variants(name: str) -> list[WorkerView]:
        out = []
        for p, (b, s), last, blocked in itertools.product((1, 2), loads, (0.0, 1.0), (False, True)):
            out.append(up(name, priority=p, busy=b, slots=s, last_dispatch=last,
                          **(blockers[name] if blocked else {})))
        return out

    n = 0
    for trio in itertools.product(variants("a"), variants("b"), variants("c")):
        check_choice(trio)
        n += 1
    assert n == 48 ** 3


def test_three_workers_every_order() -> None:
    """The choice is the same for every permutation of the input (sampled over a slice of the grid)."""
    loads = ((0, 1), (1, 2), (2, 4), (1, 4))
    pool = [up(name, priority=p, busy=b, slots=s, last_dispatch=last)
            for name, p, (b, s), last in itertools.product("abc", (1, 2), loads, (0.0, 1.0))]
    by_name = {n: [w for w in pool if w.name == n] for n in "abc"}
    for trio in itertools.product(by_name["a"], by_name["b"], by_name["c"]):
        answers = {choose_worker(perm, NOW).name for perm in itertools.permutations(trio)}  # type: ignore[union-attr]
        assert len(answers) == 1, trio

def fail(o: Outliers, name: str, times: int, now: float, total: int = 3) -> list[str | None]:
    return [o.record(name, False, now, total_workers=total) for _ in range(times)]


def test_options_defaults_are_envoys() -> None:
    opts = OutlierOptions()
    assert (opts.consecutive, opts.base_ejection_s, opts.max_ejection_s, opts.max_ejection_percent) == (5, 30, 300, 10)


@pytest.mark.parametrize("kw", [{"consecutive": 0}, {"base_ejection_s": 0}, {"max_ejection_s": 10},
                                {"max_ejection_percent": -1}, {"max_ejection_percent": 101}])
def test_options_rejects_nonsense(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OutlierOptions(**kw)  # type: ignore[arg-type]


def test_five_failures_eject_four_do_not() -> None:
    o = Outliers()
    assert fail(o, "a", 4, NOW) == [None] * 4
    assert o.ejected_until("a") == 0.0
    assert o.consecutive_failures("a") == 4
    assert fail(o, "a", 1, NOW) == ["a"]
    assert o.ejected_until("a") == NOW + 30
    assert o.is_ejected("a", NOW + 29.9) and not o.is_ejected("a", NOW + 30)
    assert o.consecutive_failures("a") == 0


def test_success_resets_the_count() -> None:
    o = Outliers()
    fail(o, "a", 4, NOW)
    assert o.record("a", True, NOW, total_workers=3) is None
    assert fail(o, "a", 4, NOW) == [None] * 4
    assert o.ejected_until("a") == 0.0
    assert fail(o, "a", 1, NOW) == ["a"]


def test_ejection_grows_and_is_capped() -> None:
    o = Outliers()
    now = NOW
    lengths = []
    for _ in range(12):
        assert fail(o, "a", 5, now)[-1] == "a"
        lengths.append(o.ejected_until("a") - now)
        now = o.ejected_until("a")
        assert o.release_expired(now) == ["a"]
    assert lengths == [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]
    assert o.times_ejected("a") == 12


def test_failures_while_ejected_do_not_count_but_success_resets() -> None:
    o = Outliers()
    fail(o, "a", 5, NOW)
    until = o.ejected_until("a")
    # Late failures of tasks dispatched before the ejection: ignored, the ejection is not extended.
    assert fail(o, "a", 10, NOW + 1) == [None] * 10
    assert o.ejected_until("a") == until
    assert o.consecutive_failures("a") == 0
    assert o.release_expired(until) == ["a"]
    assert fail(o, "a", 4, until) == [None] * 4
    o.record("a", True, until, total_workers=3)
    assert o.consecutive_failures("a") == 0


@pytest.mark.parametrize(("total", "cap"), [(0, 1), (1, 1), (3, 1), (9, 1), (10, 1), (19, 1), (20, 2), (25, 2),
                                            (30, 3), (100, 10)])
def test_max_ejected(total: int, cap: int) -> None:
    assert OutlierOptions().max_ejected(total) == cap
    o = Outliers()
    names = [f"w{i}" for i in range(cap + 2)]
    ejected = [n for n in names if fail(o, n, 5, NOW, total)[-1] == n]
    assert ejected == names[:cap]
    assert o.ejected(NOW) == sorted(names[:cap])


def test_capped_worker_is_ejected_on_its_next_failure_once_room_frees() -> None:
    o = Outliers()
    assert fail(o, "a", 5, NOW)[-1] == "a"
    assert fail(o, "b", 5, NOW) == [None] * 5            # 3 workers: only one may be out
    assert o.consecutive_failures("b") == 5
    assert fail(o, "b", 1, NOW + 29) == [None]           # "a" is still out
    assert o.release_expired(NOW + 30) == ["a"]
    assert fail(o, "b", 1, NOW + 30) == ["b"]            # room again: the next failure ejects
    assert o.ejected_until("b") == NOW + 60


def test_expired_ejection_frees_room_even_before_release_expired() -> None:
    o = Outliers()
    fail(o, "a", 5, NOW)
    assert fail(o, "b", 5, NOW + 30)[-1] == "b"          # "a" ended at NOW + 30, though nobody released it yet
    assert o.release_expired(NOW + 30) == ["a"]


def test_release_after_expiry() -> None:
    o = Outliers()
    assert o.next_release() is None
    fail(o, "a", 5, NOW, total=30)
    fail(o, "b", 5, NOW + 10, total=30)
    assert o.next_release() == NOW + 30
    assert o.release_expired(NOW + 29.999) == []
    assert o.release_expired(NOW + 30) == ["a"]
    assert o.release_expired(NOW + 30) == []                # reported once
    assert o.ejected_until("a") == 0.0
    assert o.next_release() == NOW + 40
    assert o.release_expired(NOW + 1000) == ["b"]
    assert o.next_release() is None
    assert o.ejected(NOW + 1000) == []


def test_forget() -> None:
    o = Outliers()
    fail(o, "a", 5, NOW)
    o.forget("a")
    o.forget("never-seen")
    assert o.ejected_until("a") == 0.0 and o.times_ejected("a") == 0 and o.consecutive_failures("a") == 0
    assert o.ejected(NOW) == [] and o.next_release() is None
    assert fail(o, "a", 5, NOW)[-1] == "a"
    assert o.ejected_until("a") == NOW + 30                 # starts again at the base time


def test_custom_options() -> None:
    o = Outliers(OutlierOptions(consecutive=2, base_ejection_s=10, max_ejection_s=15, max_ejection_percent=50))
    assert fail(o, "a", 2, NOW, total=4) == [None, "a"]
    assert fail(o, "b", 2, NOW, total=4) == [None, "b"]     # 50 % of 4: two at once
    assert fail(o, "c", 2, NOW, total=4) == [None, None]
    o.release_expired(NOW + 10)
    assert fail(o, "a", 2, NOW + 10, total=4) == [None, "a"]
    assert o.ejected_until("a") == NOW + 10 + 15            # 20 s capped at 15


def test_outliers_feed_the_scheduler() -> None:
    """The round trip the coordinator makes: ejected_until goes into WorkerView and the scheduler skips it."""
    o = Outliers()
    fail(o, "a:8005", 5, NOW)
    workers = [up(n, priority=p, ejected_until=o.ejected_until(n)) for n, p in (("a:8005", 1), ("b:8005", 2))]
    assert choose_worker(workers, NOW).name == "b:8005"            # type: ignore[union-attr]
    later = NOW + 30
    o.release_expired(later)
    workers = [up(n, priority=p, ejected_until=o.ejected_until(n)) for n, p in (("a:8005", 1), ("b:8005", 2))]
    assert choose_worker(workers, later).name == "a:8005"          # type: ignore[union-attr]
