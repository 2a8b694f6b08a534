"""Throughput of `mq` against multiprocessing.Queue and faster-fifo from Python.

One producer process -> one consumer process (both forked from this one),
64-byte `bytes` and a small tuple, one message per call and in batches.
Each row is the best of --runs runs: messages per second, from the moment
both processes pass a barrier until the consumer has taken the last message.

Install what it compares (it installs nothing itself), preferably in a
virtual environment, then run it:

    pip install ./queue-py faster-fifo==1.5.2
    python queue-py/bench/bench.py            # --quick for a short run

faster-fifo is optional: without it its rows say "not installed".
Queues live in $MQ_DIR (else /dev/shm) and are removed at the end.
"""

import argparse
import multiprocessing as mp
import os
import pickle
import platform
import sys
import time

import mq

try:
    import faster_fifo
except ImportError:  # the rows say so
    faster_fifo = None

PAYLOAD = b"x" * 64
TUPLE = (12345, "resize", 2.5)
BATCH = 100


# ---------------------------------------------------------------- queues
# Each maker returns (queue, cleanup); each case has a producer and a
# consumer function taking (queue, n).


def make_mq():
    name = f"bench-py-{os.getpid()}-{time.monotonic_ns()}"
    q = mq.Queue(name, maxsize=1024, max_msg_size=256)

    def cleanup():
        q.close()
        mq.remove(name)

    return q, cleanup


def make_mp():
    return mp.get_context("fork").Queue(1024), lambda: None


def make_ff():
    return faster_fifo.Queue(max_size_bytes=1024 * 256), lambda: None


def put_loop(q, n, item):
    put = q.put
    for _ in range(n):
        put(item)


def get_loop(q, n):
    get = q.get
    for _ in range(n):
        get()


def mq_put_bytes(q, n):
    put = q.put_bytes
    for _ in range(n):
        put(PAYLOAD)


def mq_get_bytes(q, n):
    get = q.get_bytes
    for _ in range(n):
        get()


def mq_put_wrapped(q, n):
    """A thin Python wrapper pickling with the pickle module itself."""
    put, dumps = q.put_bytes, pickle.dumps
    for _ in range(n):
        put(dumps(TUPLE, pickle.HIGHEST_PROTOCOL))


def mq_get_wrapped(q, n):
    get, loads = q.get_bytes, pickle.loads
    for _ in range(n):
        loads(get())


def batch_put(method, item):
    def produce(q, n):
        put_many = getattr(q, method)
        batch = [item] * BATCH
        for _ in range(n // BATCH):
            put_many(batch)

    return produce


def batch_get(method):
    def consume(q, n):
        get_many = getattr(q, method)
        got = 0
        while got < n:
            got += len(get_many(max_messages_to_get=1000))

    return consume


def ff_get_many(q, n):
    got = 0
    while got < n:
        got += len(q.get_many(max_messages_to_get=1000))


# name, message, queue maker, producer, consumer, items (full run)
CASES = [
    ("mq put_bytes/get_bytes", "64 B bytes", make_mq, mq_put_bytes, mq_get_bytes, 400_000),
    ("multiprocessing.Queue put/get", "64 B bytes", make_mp, lambda q, n: put_loop(q, n, PAYLOAD), get_loop, 100_000),
    ("faster-fifo put/get", "64 B bytes", make_ff, lambda q, n: put_loop(q, n, PAYLOAD), get_loop, 200_000),
    ("mq put/get (pickled)", "tuple", make_mq, lambda q, n: put_loop(q, n, TUPLE), get_loop, 200_000),
    ("mq put_bytes(pickle.dumps(x)) (thin Python wrapper)", "tuple", make_mq, mq_put_wrapped, mq_get_wrapped, 200_000),
    ("multiprocessing.Queue put/get", "tuple", make_mp, lambda q, n: put_loop(q, n, TUPLE), get_loop, 100_000),
    ("faster-fifo put/get", "tuple", make_ff, lambda q, n: put_loop(q, n, TUPLE), get_loop, 200_000),
    ("mq put_many/get_many (batches of 100)", "tuple", make_mq, batch_put("put_many", TUPLE), batch_get("get_many"), 1_000_000),
    ("mq put_many_bytes/get_many_bytes (batches of 100)", "64 B bytes", make_mq, batch_put("put_many_bytes", PAYLOAD), batch_get("get_many_bytes"), 1_000_000),
    ("faster-fifo put_many/get_many (batches of 100)", "tuple", make_ff, batch_put("put_many", TUPLE), ff_get_many, 1_000_000),
]


def _producer(produce, q, n, barrier):
    barrier.wait()
    produce(q, n)


def _consumer(consume, q, n, barrier, conn):
    barrier.wait()
    t0 = time.perf_counter()
    consume(q, n)
    conn.send(time.perf_counter() - t0)


def run_once(make, produce, consume, n):
    """Messages per second of one run."""
    ctx = mp.get_context("fork")  # faster-fifo does not work with spawn
    q, cleanup = make()
    barrier = ctx.Barrier(2)
    recv, send = ctx.Pipe(duplex=False)
    procs = [
        ctx.Process(target=_producer, args=(produce, q, n, barrier)),
        ctx.Process(target=_consumer, args=(consume, q, n, barrier, send)),
    ]
    try:
        for p in procs:
            p.start()
        if not recv.poll(600):
            raise RuntimeError("the consumer did not finish within 600 s")
        seconds = recv.recv()
        for p in procs:
            p.join(60)
        return n / seconds
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per row, the best counts (3)")
    ap.add_argument("--quick", action="store_true", help="a tenth of the messages, one run")
    args = ap.parse_args()
    runs = 1 if args.quick else args.runs
    cpu = next(
        (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
        platform.processor(),
    )
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs ({cpu}), load average {os.getloadavg()[0]:.1f}")
    print("| queue, verbs | message | messages/s |")
    print("|---|---|---:|")
    results = {}
    for name, message, make, produce, consume, n in CASES:
        if make is make_ff and faster_fifo is None:
            print(f"| {name} | {message} | not installed |")
            continue
        n = n // 10 if args.quick else n
        best = max(run_once(make, produce, consume, n) for _ in range(runs))
        results[(name, message)] = best
        print(f"| {name} | {message} | {best:,.0f} |", flush=True)

    def ratio(a, b):
        if a in results and b in results:
            return f"{results[a] / results[b]:.1f}x"
        return "n/a"

    mpq, ff = "multiprocessing.Queue put/get", "faster-fifo put/get"
    raw, pickled = ("mq put_bytes/get_bytes", "64 B bytes"), ("mq put/get (pickled)", "tuple")
    print()
    print(f"put_bytes/get_bytes vs multiprocessing.Queue: {ratio(raw, (mpq, '64 B bytes'))} (target >= 10x)")
    print(f"put_bytes/get_bytes vs faster-fifo:           {ratio(raw, (ff, '64 B bytes'))} (target >= 5x)")
    print(f"put/get pickled vs multiprocessing.Queue:     {ratio(pickled, (mpq, 'tuple'))} (target >= 3x)")
    print(f"put/get pickled in Rust vs thin wrapper:      "
          f"{ratio(pickled, ('mq put_bytes(pickle.dumps(x)) (thin Python wrapper)', 'tuple'))}")
    batch = ("mq put_many/get_many (batches of 100)", "tuple")
    if batch in results:
        print(f"put_many/get_many: {results[batch]:,.0f} items/s (target >= 1,000,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
