"""Functions the multi-process tests run in child processes. They live in a
module of their own so that the spawn and forkserver start methods can
import them by name."""

import os
import time

import mq


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
