"""The same queue from Python and from the `mq` command: `mq put` ->
`get_bytes`, `put_bytes` -> `mq get` (the bytes are the message, unpickled)."""

import subprocess

import workers


def run(mq_bin, *args, qdir):
    return subprocess.run(
        [mq_bin, *args, "--dir", qdir],
        capture_output=True,
        timeout=60,
        check=True,
        preexec_fn=workers.die_with_test(),
    )


def test_mq_put_then_get_bytes(q, qdir, mq_bin):
    run(mq_bin, "put", q.name, "resize photo 1", "two", qdir=qdir)
    assert q.get_bytes(timeout=10) == b"resize photo 1"
    assert q.get_many_bytes(timeout=10) == [b"two"]


def test_put_bytes_then_mq_get(q, qdir, mq_bin):
    q.put_bytes(b"from python \x00\xff")
    out = run(mq_bin, "get", q.name, "--raw", "--timeout", "10s", qdir=qdir)
    assert out.stdout == b"from python \x00\xff"


def test_mq_close_is_shutdown(q, qdir, mq_bin):
    import mq
    import pytest

    q.put("last")
    run(mq_bin, "close", q.name, qdir=qdir)
    assert q.is_shutdown
    assert q.get(timeout=10) == "last"
    with pytest.raises(mq.ShutDown):
        q.get(timeout=10)
