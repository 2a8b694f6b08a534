"""Delivery control: priorities, lease deadlines and renewals, delivery
counts, poison messages and dead-letter queues - in one process, and
between processes (consumers killed with SIGKILL, a lease holder that
lives on past its deadline)."""

import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time

import pytest

import mq
import workers
from workers import join_or_kill


@pytest.fixture
def make(qdir, name):
    """Makes queues in the test's directory; closes and removes them all afterwards."""
    made = []

    def make_queue(suffix="", **kw):
        q = mq.Queue(name + suffix, dir=qdir, **kw)
        made.append(q)
        return q

    yield make_queue
    for q in made:
        q.close()
    for n in sorted({q.name for q in made}):
        try:
            mq.remove(n, dir=qdir)
        except FileNotFoundError:
            pass


def start(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


def kill_all(procs):
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join()


# --- one process -----------------------------------------------------------


def test_higher_priorities_first_fifo_within_a_level(make):
    q = make(maxsize=4, priorities=3)
    assert q.priorities == 3 and q.capacity == 4
    q.put("low-1")
    q.put("mid-1", priority=1)
    q.put_bytes(pickle.dumps("high-1"), priority=2)
    q.put_nowait("low-2")
    q.put_many(["high-2", "high-3"], priority=2)
    q.put_many_bytes([pickle.dumps("mid-2")], priority=1)
    assert q.qsize() == 7
    assert [q.get_nowait() for _ in range(7)] == [
        "high-1", "high-2", "high-3", "mid-1", "mid-2", "low-1", "low-2",
    ]


def test_each_level_holds_maxsize_messages(make):
    q = make(maxsize=2, priorities=2)
    q.put_many([1, 2])
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    assert not q.full()
    with pytest.raises(queue.Full) as e:
        q.put_many([4, 5, 6], block=False, priority=1)
    assert e.value.count == 2
    assert q.full()
    assert q.get_many() == [4, 5, 1, 2]


@pytest.mark.parametrize(
    "call",
    [
        lambda q, p: q.put(1, priority=p),
        lambda q, p: q.put_nowait(1, priority=p),
        lambda q, p: q.put_bytes(b"x", priority=p),
        lambda q, p: q.put_many([1], priority=p),
        lambda q, p: q.put_many_bytes([b"x"], priority=p),
    ],
)
@pytest.mark.parametrize("priority", [3, 64, -1])
def test_a_priority_out_of_range_is_a_value_error(make, call, priority):
    q = make(priorities=3)
    with pytest.raises(ValueError) as e:
        call(q, priority)
    assert f"priority {priority} is out of range" in str(e.value)
    assert "3 level(s), 0 to 2" in str(e.value) and q.name in str(e.value)
    assert q.empty()


def test_without_priorities_only_level_0(make):
    q = make()
    assert q.priorities == 1
    q.put("a", priority=0)
    with pytest.raises(ValueError, match=r"priority 1 is out of range: the queue has 1 level\(s\)"):
        q.put("b", priority=1)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(priorities=0), "priorities is 0 (allowed: 1 to 64)"),
        (dict(priorities=65), "priorities is 65 (allowed: 1 to 64)"),
        (dict(priorities=-2), "priorities=-2"),
        (dict(lease_timeout=-1.5), "lease_timeout=-1.5"),
        (dict(lease_timeout=float("nan")), "lease_timeout=NaN"),
        (dict(lease_timeout=float("inf")), "lease_timeout=inf"),
        (dict(lease_timeout=0), "lease timeout is 0ns (at least 1 ms"),
        (dict(max_deliveries=0), "max deliveries is 0 (at least 1"),
        (dict(max_deliveries=-1), "max_deliveries=-1"),
        (dict(dead_letter="elsewhere"), "dead_letter='elsewhere' without max_deliveries"),
        (dict(max_deliveries=3, dead_letter="a/b"), 'dead-letter queue name "a/b" is not a queue name'),
    ],
)
def test_bad_settings_are_value_errors_naming_them(qdir, name, kw, words):
    with pytest.raises(ValueError) as e:
        mq.Queue(name, dir=qdir, **kw)
    assert words in str(e.value)
    assert os.listdir(qdir) == []  # refused before anything was made


def test_a_dead_letter_queue_of_itself_is_refused(qdir, name):
    with pytest.raises(ValueError, match="is .* itself"):
        mq.Queue(name, dir=qdir, max_deliveries=1, dead_letter=name)


def test_settings_apply_when_creating_and_the_queue_keeps_them(make):
    q = make(maxsize=4, priorities=2, lease_timeout=2.5, max_deliveries=3)
    assert (q.priorities, q.lease_timeout, q.max_deliveries, q.dead_letter) == (2, 2.5, 3, None)
    # Opening it again: its own settings win, as Rust's open_or_create.
    again = make(maxsize=9, priorities=5, lease_timeout=1, max_deliveries=1)
    assert (again.capacity, again.priorities, again.lease_timeout, again.max_deliveries) == (4, 2, 2.5, 3)
    only_open = make(create=False, priorities=7)
    assert only_open.priorities == 2
    plain = make("-plain")
    assert (plain.priorities, plain.lease_timeout, plain.max_deliveries, plain.dead_letter) == (1, None, None, None)


def test_a_dead_letter_queue_serves_one_queue(make, name):
    a = make("-a", max_deliveries=1, dead_letter=name + ".shared")
    make(".shared", create=False)
    assert a.dead_letter == name + ".shared"
    with pytest.raises(ValueError, match=f'"{name}.shared" already holds the dead letters of "{name}-a"'):
        make("-b", max_deliveries=1, dead_letter=name + ".shared")


def test_deliveries_count_and_a_poison_message_is_dropped(make):
    q = make(max_deliveries=2)
    q.put("poison")
    with q.lease_bytes() as first:
        assert first.deliveries == 1 and first.dead_letter is None
        first.release()
    ctx = q.lease()
    with pytest.raises(ValueError, match="holds no message"):
        ctx.deliveries
    with pytest.raises(RuntimeError):
        with ctx as obj:
            assert obj == "poison" and ctx.deliveries == 2 and ctx.dead_letter is None
            ctx.renew()  # no lease timeout: only checks that it is held
            raise RuntimeError("consumer fails again")
    with pytest.raises(queue.Empty):  # a third delivery drops it instead
        q.get(timeout=0.2)
    s = q.stats()
    assert (s["dropped_poison"], s["redelivered"], s["len"]) == (1, 2, 0)


def test_a_dead_letter_says_where_it_came_from(make, name):
    q = make(max_deliveries=1, dead_letter=name + ".dead")
    assert q.dead_letter == name + ".dead"
    dead = make(".dead", create=False)
    q.put_bytes(b"bad")
    q.put_bytes(b"good")
    q.lease_bytes().release()  # delivered once
    assert q.get_bytes(timeout=1) == b"good"  # "bad" moved on the way
    lease = dead.lease_bytes(timeout=1)
    assert lease.data == b"bad" and lease.deliveries == 1
    origin = lease.dead_letter
    assert (origin.queue, origin.deliveries) == (q.name, 1)
    assert repr(origin) == f"mq.DeadLetter(queue='{q.name}', deliveries=1)"
    lease.ack()
    assert lease.dead_letter.queue == q.name  # still there once settled
    assert q.stats()["dead_lettered"] == 1
    assert dead.stats()["dead_letters_of"] == q.name


def test_renew_and_ack_after_the_deadline_raise_lease_expired(make):
    q = make(lease_timeout=0.1)
    q.put_bytes(b"slow work")
    lease = q.lease_bytes()
    lease.renew()
    time.sleep(0.2)
    # A waiting getter notices the deadline and takes the message again.
    again = q.lease_bytes(timeout=5)
    assert (again.data, again.deliveries) == (b"slow work", 2)
    with pytest.raises(mq.LeaseExpired, match="renew"):
        lease.renew()
    with pytest.raises(mq.LeaseExpired) as e:
        lease.ack()
    assert isinstance(e.value, mq.Error) and q.name in str(e.value)
    assert "lease_timeout of 0.1 s" in str(e.value)
    again.ack()
    s = q.stats()
    assert (s["expired"], s["lease_timeout"], s["len"]) == (1, 0.1, 0)


def test_stats_has_the_delivery_fields(make, name):
    q = make(maxsize=4, priorities=2, lease_timeout=30, max_deliveries=5, dead_letter=name + ".dlq")
    q.put(1, priority=1)
    lease = q.lease_bytes()
    s = q.stats()
    for key, value in {
        "name": q.name, "capacity": 4, "priorities": 2, "lease_timeout": 30.0,
        "max_deliveries": 5, "dead_letter": q.name + ".dlq", "dead_letters_of": None,
        "expired": 0, "dropped_poison": 0, "dead_lettered": 0, "redelivered": 0,
        "in_flight": 1, "len": 0, "total_put": 1, "closed": False,
    }.items():
        assert s[key] == value, key
    assert [lvl["tail"] for lvl in s["levels"]] == [0, 1]
    (held,) = s["leases"]
    assert held["deliveries"] == 1 and 29 < held["expires_in"] <= 30
    assert [p["pid"] for p in s["participants"]] == [os.getpid()]
    lease.ack()
    make(".dlq", create=False)


# --- between processes ------------------------------------------------------


@pytest.mark.parametrize("prefilled", [True, False], ids=["prefilled", "concurrent"])
def test_priorities_with_two_producers_and_two_consumers(make, prefilled):
    per_level, levels = 200, 3
    q = make(maxsize=2 * per_level if prefilled else 16, priorities=levels)
    results = make("-results", max_msg_size=1 << 20)
    ctx = multiprocessing.get_context("spawn")
    procs = []
    try:
        producers = [start(ctx, workers.produce_levels, q, i, per_level, levels) for i in range(2)]
        procs += producers
        if prefilled:  # every message is in before the first get
            join_or_kill(producers)
            q.shutdown()
        consumers = [start(ctx, workers.take_all, q, results) for _ in range(2)]
        procs += consumers
        join_or_kill(producers)
        q.shutdown()
        join_or_kill(consumers)
        assert all(p.exitcode == 0 for p in procs)
        got = [results.get(timeout=5) for _ in consumers]
    finally:
        kill_all(procs)
    everything = [m for g in got for m in g]
    expected = {(p, lvl, s) for p in range(2) for lvl in range(levels) for s in range(per_level)}
    assert len(everything) == len(expected) and set(everything) == expected  # exactly once
    for g in got:
        # FIFO within a level: each producer's messages of a level in order.
        for p in range(2):
            for lvl in range(levels):
                seqs = [s for (pp, ll, s) in g if (pp, ll) == (p, lvl)]
                assert seqs == sorted(seqs)
        if prefilled:  # nothing new arrives: never a lower level before a higher one
            lvls = [lvl for (_, lvl, _) in g]
            assert lvls == sorted(lvls, reverse=True)


def test_an_expired_lease_goes_to_another_process_and_its_late_ack_fails(make):
    q = make(lease_timeout=0.5)
    report, go = make("-report"), make("-go")
    q.put_bytes(b"job")
    holder = start(multiprocessing.get_context("fork"), workers.hold_then_ack, q, report, go)
    try:
        assert report.get(timeout=30) == (b"job", 1)
        taken = time.monotonic()
        # The holder lives on without renewing: we get the message after its deadline.
        lease = q.lease_bytes(timeout=10)
        assert time.monotonic() - taken > 0.3
        assert (lease.data, lease.deliveries) == (b"job", 2)
        go.put("ack now")
        verdict = report.get(timeout=30)
        assert verdict.startswith("LeaseExpired: ") and q.name in verdict, verdict
        lease.ack()
        join_or_kill([holder])
        assert holder.exitcode == 0
        s = q.stats()
        assert (s["expired"], s["total_got"], s["len"]) == (1, 1, 0)
    finally:
        kill_all([holder])


def test_renew_keeps_a_lease_past_its_timeout(make):
    q = make(lease_timeout=1.0)
    report = make("-report")
    q.put_bytes(b"long job")
    lease = q.lease_bytes()
    # Another process waits for a message three timeouts long; we renew.
    getter = start(multiprocessing.get_context("fork"), workers.try_get, q, report, 3.0)
    try:
        while getter.is_alive():
            lease.renew()
            time.sleep(0.1)
        join_or_kill([getter])
        assert report.get(timeout=5) == ("empty",)
        lease.ack()
        assert q.stats()["expired"] == 0
    finally:
        kill_all([getter])


def test_a_message_that_kills_its_consumers_becomes_a_dead_letter_once(make, name):
    max_deliveries = 2
    q = make(max_deliveries=max_deliveries, dead_letter=name + ".dead")
    dead = make(".dead", create=False)
    report = make("-report")
    good = [b"a", b"b", b"c", b"d", b"e"]
    q.put_many_bytes([good[0], b"poison"] + good[1:])
    ctx = multiprocessing.get_context("fork")
    acked, procs = [], []
    try:
        for delivery in range(1, max_deliveries + 1):
            consumer = start(ctx, workers.ack_all_but_poison, q, report)
            procs.append(consumer)
            while True:
                kind, what = report.get(timeout=30)
                if kind == "poison":
                    break
                acked.append(what)
            assert what == delivery
            os.kill(consumer.pid, signal.SIGKILL)
            consumer.join(30)
            assert consumer.exitcode == -signal.SIGKILL
        # The next consumer takes the rest; the poison goes to ".dead" on the way.
        last = start(ctx, workers.ack_all_but_poison, q, report)
        procs.append(last)
        while len(acked) < len(good):
            kind, what = report.get(timeout=30)
            assert kind == "ok", (kind, what)
            acked.append(what)
        q.shutdown()
        join_or_kill([last])
        assert last.exitcode == 0
    finally:
        kill_all(procs)
    assert sorted(acked) == good  # each good message exactly once
    lease = dead.lease_bytes(timeout=5)
    assert lease.data == b"poison"
    assert (lease.dead_letter.queue, lease.dead_letter.deliveries) == (q.name, max_deliveries)
    lease.ack()
    with pytest.raises(queue.Empty):  # exactly once
        dead.get_bytes(timeout=0.2)
    s = q.stats()
    assert (s["dead_lettered"], s["dropped_poison"], s["len"]) == (1, 0, 0)
    assert s["redelivered"] >= max_deliveries
