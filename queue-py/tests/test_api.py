"""Every method of mq.Queue, mq.Lease and the module, in one process."""

import os
import pickle
import queue
import stat
import sys

import pytest

import mq


def test_put_get_any_picklable_object(q):
    for obj in [None, 1, "text", b"bytes", (1, "a"), {"k": [1, 2.5]}, {1, 2}]:
        q.put(obj)
        assert q.get() == obj


def test_fifo_order_and_counts(q):
    assert q.empty() and not q.full() and q.qsize() == 0
    for i in range(8):
        q.put(i)
    assert q.full() and not q.empty() and q.qsize() == 8
    assert [q.get() for _ in range(8)] == list(range(8))
    assert q.empty()


def test_nowait_forms(q):
    with pytest.raises(queue.Empty):
        q.get_nowait()
    q.put_nowait("a")
    assert q.get_nowait() == "a"
    for i in range(8):
        q.put_nowait(i)
    with pytest.raises(queue.Full):
        q.put_nowait(8)
    with pytest.raises(queue.Full):
        q.put(8, block=False)


def test_timeouts_raise_full_and_empty(q):
    with pytest.raises(queue.Empty) as e:
        q.get(timeout=0.05)
    assert q.name in str(e.value)
    with pytest.raises(queue.Empty):
        q.get_bytes(timeout=0)
    for i in range(8):
        q.put(i)
    with pytest.raises(queue.Full):
        q.put(9, timeout=0.05)
    with pytest.raises(queue.Full):
        q.put_bytes(b"x", timeout=0.01)
    assert mq.Full is queue.Full and mq.Empty is queue.Empty


def test_bad_timeout_is_a_value_error(q):
    with pytest.raises(ValueError, match="timeout"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        q.put(1, timeout=float("nan"))


def test_bytes_are_not_pickled(q):
    q.put_bytes(b"raw \x00 bytes")
    q.put_bytes(bytearray(b"ba"))
    q.put_bytes(memoryview(b"mv"))
    assert q.get_bytes() == b"raw \x00 bytes"
    assert q.get_bytes() == b"ba"
    assert q.get_bytes() == b"mv"
    q.put("obj")
    assert pickle.loads(q.get_bytes()) == "obj"
    with pytest.raises(TypeError, match="put_bytes takes bytes"):
        q.put_bytes("a str")


def test_put_many_get_many(q):
    q.put_many([1, "two", (3,)])
    assert q.get_many() == [1, "two", (3,)]
    q.put_many(range(8))
    assert q.get_many(max_messages_to_get=3) == [0, 1, 2]
    assert q.get_many(timeout=1) == [3, 4, 5, 6, 7]
    with pytest.raises(queue.Empty):
        q.get_many(block=False)
    with pytest.raises(queue.Empty):
        q.get_many(timeout=0.05)
    with pytest.raises(ValueError):
        q.get_many(max_messages_to_get=0)
    q.put_many_bytes([b"a", bytearray(b"b")])
    assert q.get_many_bytes() == [b"a", b"b"]


def test_put_many_times_out_with_a_count(q):
    with pytest.raises(queue.Full) as e:
        q.put_many(range(10), timeout=0.05)
    assert e.value.count == 8
    assert q.get_many() == list(range(8))


def test_put_many_checks_every_size_first(q):
    with pytest.raises(ValueError, match="1024"):
        q.put_many_bytes([b"ok", b"x" * 2000])
    assert q.empty()


def test_oversized_message_is_a_value_error_naming_both_sizes(q):
    with pytest.raises(ValueError) as e:
        q.put_bytes(b"x" * 1025)
    assert "1025" in str(e.value) and "1024" in str(e.value)
    with pytest.raises(ValueError, match="1024"):
        q.put("y" * 5000, timeout=1)
    assert q.empty()


def test_lease_context_acks_on_success_and_releases_on_error(q):
    q.put("job")
    with q.lease() as item:
        assert item == "job"
    assert q.empty()
    q.put("again")
    with pytest.raises(RuntimeError):
        with q.lease(timeout=1) as item:
            raise RuntimeError("work failed")
    assert q.get(timeout=1) == "again"
    with pytest.raises(queue.Empty):
        with q.lease(timeout=0.01):
            pass


def test_lease_bytes_explicit(q):
    q.put_bytes(b"one")
    lease = q.lease_bytes()
    assert lease.data == b"one" and not lease.settled
    lease.release()
    assert lease.settled
    with pytest.raises(ValueError, match="already"):
        lease.ack()
    lease = q.lease_bytes(timeout=1)
    assert lease.data == b"one"
    lease.ack()
    assert q.empty()
    with pytest.raises(queue.Empty):
        q.lease_bytes(block=False)


def test_lease_bytes_as_context_and_dropped(q):
    q.put_bytes(b"x")
    with q.lease_bytes() as lease:
        assert lease.data == b"x"
    assert q.empty()
    q.put_bytes(b"y")
    lease = q.lease_bytes()
    del lease  # never settled: goes back
    assert q.get_bytes(timeout=1) == b"y"


def test_properties_and_repr(qdir, name):
    q = mq.Queue(name, maxsize=4, max_msg_size=100, dir=qdir)
    try:
        assert q.name == name
        assert q.capacity == 4 and q.max_msg_size == 100
        assert str(q.dir) == os.path.abspath(qdir)
        assert name in repr(q)
        # Opening again ignores the sizes: they apply when creating.
        again = mq.Queue(name, maxsize=99, max_msg_size=7, dir=qdir)
        assert again.capacity == 4 and again.max_msg_size == 100
        again.close()
    finally:
        q.close()
        mq.remove(name, dir=qdir)


def test_maxsize_zero_or_less_means_the_default(qdir, name):
    q = mq.Queue(name, maxsize=-5, dir=qdir)
    assert q.capacity == mq.DEFAULT_MAXSIZE == 1024
    assert q.max_msg_size == mq.DEFAULT_MAX_MSG_SIZE
    q.close()
    mq.remove(name, dir=qdir)


def test_dir_defaults_to_mq_dir(qdir, name):
    q = mq.Queue(name)  # MQ_DIR is qdir (fixture)
    assert str(q.dir) == os.path.abspath(qdir)
    assert os.path.exists(os.path.join(qdir, "mq." + name))
    q.close()
    mq.remove(name)


def test_mode_applies_when_creating(qdir, name):
    q = mq.Queue(name, dir=qdir, mode=0o640)
    assert stat.S_IMODE(os.stat(os.path.join(qdir, "mq." + name)).st_mode) == 0o640
    q.close()
    mq.remove(name, dir=qdir)


def test_create_false_on_a_missing_queue(qdir):
    with pytest.raises(FileNotFoundError, match="missing"):
        mq.Queue("missing", create=False, dir=qdir)


def test_invalid_name_is_a_value_error(qdir):
    with pytest.raises(ValueError, match="invalid queue name"):
        mq.Queue("bad/name", dir=qdir)


def test_other_failures_are_mq_error_with_the_name(qdir, name):
    path = os.path.join(qdir, "mq." + name)
    with open(path, "wb") as f:
        f.write(b"not a queue at all" * 100)
    try:
        with pytest.raises(mq.Error) as e:
            mq.Queue(name, dir=qdir)
        assert name in str(e.value)
    finally:
        os.unlink(path)


def test_shutdown_ends_the_stream(q):
    q.put_many([1, 2])
    assert not q.is_shutdown
    q.shutdown()
    q.shutdown()  # again: nothing
    assert q.is_shutdown
    with pytest.raises(mq.ShutDown):
        q.put(3)
    with pytest.raises(mq.ShutDown):
        q.put_bytes(b"3", block=False)
    assert q.get() == 1
    assert q.get_many() == [2]
    with pytest.raises(mq.ShutDown):
        q.get()
    with pytest.raises(mq.ShutDown):
        q.get_many(timeout=1)
    with pytest.raises(mq.ShutDown):
        with q.lease():
            pass
    assert issubclass(mq.ShutDown, mq.Error)
    if sys.version_info >= (3, 13):
        assert issubclass(mq.ShutDown, queue.ShutDown)


def test_close_detaches_only_this_handle(qdir, name):
    a = mq.Queue(name, dir=qdir)
    b = mq.Queue(name, dir=qdir)
    a.put("x")
    a.close()
    a.close()
    a.join_thread()
    a.cancel_join_thread()
    with pytest.raises(ValueError, match="closed"):
        a.put("y")
    assert "closed" in repr(a)
    assert b.get(timeout=1) == "x"
    b.close()
    mq.remove(name, dir=qdir)


def test_remove(qdir, name):
    mq.Queue(name, dir=qdir).close()
    mq.remove(name, dir=qdir)
    with pytest.raises(FileNotFoundError):
        mq.remove(name, dir=qdir)


def test_pickle_is_name_and_dir(q, qdir):
    data = pickle.dumps(q)
    assert len(data) < 200
    copy = pickle.loads(data)
    assert copy.name == q.name and copy.dir == q.dir
    q.put("through the copy")
    assert copy.get(timeout=1) == "through the copy"
    copy.close()


def test_unpickling_a_removed_queue_is_file_not_found(qdir, name):
    q = mq.Queue(name, dir=qdir)
    data = pickle.dumps(q)
    q.close()
    mq.remove(name, dir=qdir)
    with pytest.raises(FileNotFoundError):
        pickle.loads(data)


def test_get_of_raw_bytes_that_do_not_unpickle(q):
    q.put_bytes(b"plain text")
    with pytest.raises(pickle.UnpicklingError):
        q.get()


def test_threads_share_a_handle(q):
    import threading

    got = []

    def consumer():
        for _ in range(100):
            got.append(q.get(timeout=10))

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(100):
        q.put(i, timeout=10)
    t.join(10)
    assert sorted(got) == list(range(100))
