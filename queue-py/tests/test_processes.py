"""Between processes: the three start methods, ProcessPoolExecutor, an
unrelated process opening by name, exactly-once with 2 producers and 2
consumers, a lease holder killed with SIGKILL, Ctrl-C while blocked, and
permission denied for another user."""

import multiprocessing
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

import mq
import workers
from workers import join_or_kill

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]


@pytest.fixture
def pair(qdir, name):
    a = mq.Queue(name + "-in", dir=qdir)
    b = mq.Queue(name + "-out", dir=qdir)
    yield a, b
    for q in (a, b):
        q.close()
        mq.remove(q.name, dir=qdir)


@pytest.mark.parametrize("method", METHODS)
def test_a_queue_passes_to_a_process(method, pair):
    q_in, q_out = pair
    ctx = multiprocessing.get_context(method)
    p = ctx.Process(target=workers.echo, args=(q_in, q_out))
    p.start()
    q_in.put_many([1, "ab", 3])
    got = [q_out.get(timeout=30) for _ in range(3)]
    q_in.shutdown()
    join_or_kill([p])
    assert p.exitcode == 0
    assert got == [2, "abab", 6]


@pytest.mark.parametrize("method", METHODS)
def test_process_pool_executor(method, q):
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as ex:
        pids = list(ex.map(workers.put_one, [q] * 6, range(6), timeout=60))
    assert os.getpid() not in pids
    assert sorted(q.get(timeout=5) for _ in range(6)) == list(range(6))


def start_python(code, env):
    """Runs `code` in a new Python that dies with this test, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=workers.die_with_test(),
    )


def test_a_child_dies_with_the_process_that_started_it():
    # A middle process starts two sleepers the way the tests start their
    # children (subprocess with die_with_test, multiprocessing with
    # dies_with_parent) and is killed: both must go with it.
    code = textwrap.dedent(
        """
        import multiprocessing, subprocess, sys, time
        import workers
        sleeper = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            preexec_fn=workers.die_with_test(),
        )
        worker = multiprocessing.get_context("fork").Process(target=workers.sleep_for, args=(60,))
        worker.start()
        print(sleeper.pid, worker.pid, flush=True)
        time.sleep(60)
        """
    )
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
    middle = start_python(code, env)
    pids = []
    try:
        pids = [int(p) for p in middle.stdout.readline().split()]
        assert len(pids) == 2, f"the middle process printed {pids}"
        middle.kill()
        middle.wait()
        deadline = time.monotonic() + 10
        while any(workers.alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(workers.alive(p) for p in pids), f"children {pids} outlived their parent"
    finally:
        if middle.poll() is None:
            middle.kill()
            middle.wait()
        for p in pids:
            if workers.alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_program_that_leaves_a_child_behind_fails_its_test():
    # What the tutorial's programs run under: a child left running after the
    # program ends is reported (and killed), as is a program that hangs.
    leaves = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"
    with pytest.raises(AssertionError, match="left processes"):
        workers.run_in_own_group([sys.executable, "-c", leaves], 30)
    with pytest.raises(AssertionError, match="ran over 1 s"):
        workers.run_in_own_group([sys.executable, "-c", "import time; time.sleep(60)"], 1)
    done = workers.run_in_own_group([sys.executable, "-c", "print('ok')"], 30)
    assert (done.returncode, done.stdout) == (0, "ok\n")


def test_an_unrelated_process_opens_it_by_name(q, qdir):
    code = textwrap.dedent(
        f"""
        import mq
        q = mq.Queue({q.name!r}, create=False)   # dir from MQ_DIR
        q.put(q.get(timeout=30) + " and back", timeout=30)
        """
    )
    q.put("there")
    env = dict(os.environ, MQ_DIR=qdir)
    subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=True,
        timeout=60,
        preexec_fn=workers.die_with_test(),
    )
    assert q.get(timeout=5) == "there and back"


def test_exactly_once_with_two_producers_and_two_consumers(qdir, name):
    per_producer = 5000
    q = mq.Queue(name, maxsize=64, dir=qdir)
    results = mq.Queue(name + "-results", dir=qdir)
    ctx = multiprocessing.get_context("spawn")
    producers = [
        ctx.Process(target=workers.produce, args=(q, i * per_producer, per_producer))
        for i in range(2)
    ]
    consumers = [ctx.Process(target=workers.consume, args=(q, results)) for _ in range(2)]
    try:
        for p in producers + consumers:
            p.start()
        join_or_kill(producers)
        q.shutdown()
        join_or_kill(consumers)
        reports = [results.get(timeout=5) for _ in consumers]
        items = range(2 * per_producer)
        assert sum(r[0] for r in reports) == len(items)
        assert sum(r[1] for r in reports) == sum(items)
        assert sum(r[2] for r in reports) == sum(i * i for i in items)
        assert all(r[0] > 0 for r in reports), f"a consumer got nothing: {reports}"
        assert all(p.exitcode == 0 for p in producers + consumers)
    finally:
        for x in (q, results):
            x.close()
            mq.remove(x.name, dir=qdir)


def test_a_lease_comes_back_when_its_holder_is_killed(pair):
    q, ready = pair
    q.put_bytes(b"precious")
    p = multiprocessing.get_context("fork").Process(target=workers.hold_a_lease, args=(q, ready))
    p.start()
    try:
        assert ready.get_bytes(timeout=30) == b"precious"
        assert q.empty()  # the child holds it
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
        assert p.exitcode == -signal.SIGKILL
        assert q.get_bytes(timeout=30) == b"precious"
    finally:
        if p.is_alive():
            p.kill()
            p.join()


@pytest.mark.parametrize(
    "blocked_in",
    [
        "q.get()",
        "q.get_bytes(timeout=60)",
        "q.get_many()",
        "q.lease_bytes()",
        "q.put_bytes(b'x') or q.put(1)",  # maxsize=1: the second put blocks
        "q.put_many([1, 2])",  # maxsize=1: waits for room for the second
    ],
)
def test_ctrl_c_while_blocked_raises_keyboard_interrupt(blocked_in, q, qdir):
    code = textwrap.dedent(
        f"""
        import sys, time, mq
        q = mq.Queue({q.name + "-1"!r}, maxsize=1)
        print("ready", flush=True)
        try:
            {blocked_in}
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            q.close()
            mq.remove(q.name)
            sys.exit(0)
        sys.exit(3)
        """
    )
    env = dict(os.environ, MQ_DIR=qdir)
    child = start_python(code, env)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # into the blocking call
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
        latency = time.monotonic() - sent
        print(f"{blocked_in}: KeyboardInterrupt after {latency * 1000:.0f} ms")
        assert child.returncode == 0, f"exit {child.returncode}, output {out!r}"
        assert out.strip() == "KeyboardInterrupt"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_permission_denied_for_another_user(qdir, name):
    if os.geteuid() != 0:
        pytest.fail("this test becomes user nobody, which needs root: run the tests as root, as CI does")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.fail("this test needs the user 'nobody' (add it: 'useradd -r nobody')")
    # The child forks from this process (the module is loaded already), so
    # nobody needs no access to the venv; it does need to reach the queue
    # directory, to be refused by the queue file's own mode.
    os.chmod(qdir, 0o755)  # nobody may look in the directory, not open the queue
    q = mq.Queue(name, dir=qdir, mode=0o600)
    try:
        r, w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: become nobody and try
            os.close(r)
            try:
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                workers.die_with(parent)  # after setuid, which clears it
                try:
                    mq.Queue(name, dir=qdir, create=False)
                    verdict = b"opened"
                except PermissionError as e:
                    verdict = b"PermissionError: " + str(e).encode()
                except BaseException as e:
                    verdict = repr(e).encode()
                os.write(w, verdict)
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            verdict = f.read().decode()
        os.waitpid(pid, 0)
        assert verdict.startswith("PermissionError: "), verdict
        assert name in verdict
    finally:
        q.close()
        mq.remove(name, dir=qdir)


def test_a_forked_child_leaves_the_parents_handle_and_lease_alone(q):
    q.put_many(["held by the parent", "second"])
    lease = q.lease_bytes()
    ctx = q.lease()
    r, w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            workers.die_with(parent)
            os.close(r)
            try:
                lease.ack()
                verdict = "acked the parent's lease"
            except ValueError:
                verdict = "refused"
            try:
                ctx.__enter__()
                verdict += ", entered the parent's lease context"
            except ValueError:
                verdict += ", refused"
            q.put("from the child")  # its own fresh handle
            del lease, ctx
            q.close()  # closes the child's handle only
            os.write(w, verdict.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        verdict = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert verdict == "refused, refused"
    lease.ack()  # still the parent's: its entry was not freed by the child
    assert sorted(q.get_many(timeout=5)) == ["from the child", "second"]
