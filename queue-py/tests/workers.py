"""Functions the multi-process tests run in child processes. They live in a
module of their own so that the spawn and forkserver start methods can
import them by name. Also `join_or_kill`, for the tests that start them."""

import os
import time

import mq


def join_or_kill(procs, timeout=60):
    """Joins every process; one still running after `timeout` is killed and fails the test."""
    deadline = time.monotonic() + timeout
    hung = []
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
            hung.append(p.name)
    assert not hung, f"processes {hung} did not finish within {timeout} s (killed)"


def echo(q_in, q_out):
    """Moves messages from q_in to q_out, doubled, until q_in is shut down."""
    while True:
        try:
            item = q_in.get(timeout=30)
        except mq.ShutDown:
            return
        q_out.put(item * 2, timeout=30)


def put_one(q, item):
    """For ProcessPoolExecutor: puts one item and returns this process's pid."""
    q.put(item, timeout=30)
    return os.getpid()


def produce(q, first, count):
    """Puts the ints first .. first+count-1, in batches and one by one."""
    items = list(range(first, first + count))
    half = count // 2
    for i in range(0, half, 100):
        q.put_many(items[i : min(i + 100, half)], timeout=30)
    for item in items[half:]:
        q.put(item, timeout=30)


def consume(q, results):
    """Takes ints until the queue is shut down; reports the count and two checksums."""
    count = total = squares = 0
    while True:
        try:
            batch = q.get_many(timeout=30, max_messages_to_get=64)
        except mq.ShutDown:
            break
        for item in batch:
            count += 1
            total += item
            squares += item * item
    results.put((count, total, squares), timeout=30)


def hold_a_lease(q, ready):
    """Takes a lease, says so, and waits to be killed."""
    lease = q.lease_bytes(timeout=30)
    ready.put_bytes(lease.data, timeout=30)
    time.sleep(60)


def produce_levels(q, producer, count, levels):
    """Puts (producer, level, seq) for seq < count at every level, the levels
    interleaved; producer 1 puts in batches of 10 per level."""
    if producer == 1:
        for start in range(0, count, 10):
            for level in range(levels):
                batch = [(producer, level, s) for s in range(start, min(start + 10, count))]
                q.put_many(batch, timeout=30, priority=level)
        return
    for seq in range(count):
        for level in range(levels):
            q.put((producer, level, seq), timeout=30, priority=level)


def take_all(q, results):
    """Gets until the queue is shut down; reports what it got, in order."""
    got = []
    while True:
        try:
            got.append(q.get(timeout=30))
        except mq.ShutDown:
            break
    results.put(got, timeout=30)


def hold_then_ack(q, report, go):
    """Takes a lease, reports it, acks it when told to and reports how that went."""
    lease = q.lease_bytes(timeout=30)
    report.put((lease.data, lease.deliveries), timeout=30)
    go.get(timeout=30)
    try:
        lease.ack()
        report.put("acked", timeout=30)
    except mq.LeaseExpired as e:
        report.put(f"LeaseExpired: {e}", timeout=30)


def try_get(q, report, timeout):
    """Reports what one get_bytes(timeout) finds: ("got", data) or ("empty",)."""
    try:
        report.put(("got", q.get_bytes(timeout=timeout)), timeout=30)
    except mq.Empty:
        report.put(("empty",), timeout=30)


def ack_all_but_poison(q, report):
    """Leases until shutdown: acks and reports ("ok", data) for each message,
    but on b"poison" reports ("poison", deliveries) and waits to be killed."""
    while True:
        try:
            lease = q.lease_bytes(timeout=30)
        except mq.ShutDown:
            return
        if lease.data == b"poison":
            report.put(("poison", lease.deliveries), timeout=30)
            time.sleep(60)
        lease.ack()
        report.put(("ok", lease.data), timeout=30)
