"""Functions the multi-process tests run in child processes. They live in a
module of their own so that the spawn and forkserver start methods can
import them by name. Also `join_or_kill`, for the tests that start them, and
`die_with_test`, so that no child outlives a test process that was killed."""

import ctypes
import functools
import multiprocessing
import os
import signal
import subprocess
import tempfile
import time

import mq

# Loaded once here, not in a child between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with(parent):
    """Asks the kernel to SIGKILL this process when its parent dies (kept across
    exec, cleared by setuid), and exits at once if its parent is no longer
    `parent` (the pid it had before the fork)."""
    if _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(101)
    if os.getppid() != parent:
        os._exit(102)


def die_with_test():
    """A `preexec_fn` for subprocess: the child dies with the test process
    (the thread calling this must be the one that waits for the child)."""
    parent = os.getpid()
    return lambda: die_with(parent)


def _running_group(pid):
    """The process group of `pid` if it runs (a zombie, dead but not reaped,
    does not), else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state, _parent, group = f.read().rsplit(")", 1)[1].split()[:3]
    except OSError:
        return None
    return None if state in ("Z", "X") else int(group)


def alive(pid):
    """Whether `pid` runs."""
    return _running_group(pid) is not None


def _group_members(pgid):
    """The running processes of process group `pgid`."""
    pids = (int(e) for e in os.listdir("/proc") if e.isdigit())
    return [pid for pid in pids if _running_group(pid) == pgid]


def run_in_own_group(args, timeout, **kwargs):
    """`subprocess.run(args, capture_output=True, text=True)` in a process
    group of its own, so that nothing the program starts outlives it: on a
    timeout the whole group is killed, and processes of the group still
    running 5 s after the program ended fail the test (and are killed).
    The output goes through files, not pipes, which a child left behind
    would keep open."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_test(),
            **kwargs,
        )

        def output():
            out.seek(0)
            err.seek(0)
            return out.read(), err.read()

        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{args} ran over {timeout} s (its process group was killed): {output()}")
        deadline = time.monotonic() + 5
        while (left := _group_members(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        if left:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{args} left processes {left} running after it ended (killed)")
        return subprocess.CompletedProcess(args, proc.returncode, *output())


def dies_with_parent(target):
    """Makes a multiprocessing target die with its parent process (the test,
    or the forkserver, which exits with the test)."""

    @functools.wraps(target)
    def run(*args, **kwargs):
        die_with(os.getppid())
        # A parent that died before the prctl left us with a new one.
        started_by = multiprocessing.parent_process()
        if started_by is not None and not started_by.is_alive():
            os._exit(102)
        return target(*args, **kwargs)

    return run


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


@dies_with_parent
def sleep_for(seconds):
    """Sleeps (a child for the test of `dies_with_parent` to orphan)."""
    time.sleep(seconds)


@dies_with_parent
def echo(q_in, q_out):
    """Moves messages from q_in to q_out, doubled, until q_in is shut down."""
    while True:
        try:
            item = q_in.get(timeout=30)
        except mq.ShutDown:
            return
        q_out.put(item * 2, timeout=30)


@dies_with_parent
def put_one(q, item):
    """For ProcessPoolExecutor: puts one item and returns this process's pid."""
    q.put(item, timeout=30)
    return os.getpid()


@dies_with_parent
def produce(q, first, count):
    """Puts the ints first .. first+count-1, in batches and one by one."""
    items = list(range(first, first + count))
    half = count // 2
    for i in range(0, half, 100):
        q.put_many(items[i : min(i + 100, half)], timeout=30)
    for item in items[half:]:
        q.put(item, timeout=30)


@dies_with_parent
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


@dies_with_parent
def hold_a_lease(q, ready):
    """Takes a lease, says so, and waits to be killed."""
    lease = q.lease_bytes(timeout=30)
    ready.put_bytes(lease.data, timeout=30)
    time.sleep(60)


@dies_with_parent
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


@dies_with_parent
def take_all(q, results):
    """Gets until the queue is shut down; reports what it got, in order."""
    got = []
    while True:
        try:
            got.append(q.get(timeout=30))
        except mq.ShutDown:
            break
    results.put(got, timeout=30)


@dies_with_parent
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


@dies_with_parent
def try_get(q, report, timeout):
    """Reports what one get_bytes(timeout) finds: ("got", data) or ("empty",)."""
    try:
        report.put(("got", q.get_bytes(timeout=timeout)), timeout=30)
    except mq.Empty:
        report.put(("empty",), timeout=30)


@dies_with_parent
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
