"""Shared fixtures for the `mq` tests: a private queue directory per test
(checked empty afterwards, nothing left in /dev/shm), unique queue names, and
the `mq` binary built by `cargo build --workspace --bins` (MQ_BIN)."""

import itertools
import os
import shutil
import sys
import tempfile

import pytest

import mq

_counter = itertools.count()


@pytest.fixture
def qdir(monkeypatch):
    """A fresh queue directory, also exported as MQ_DIR; must be empty at the end."""
    before = set(_shm_queues())
    d = tempfile.mkdtemp(prefix="mq-pytest-", dir="/dev/shm")
    monkeypatch.setenv("MQ_DIR", d)
    yield d
    left = os.listdir(d)
    shutil.rmtree(d, ignore_errors=True)
    assert left == [], f"the test left {left} in its queue directory {d}"
    leaked = set(_shm_queues()) - before
    assert not leaked, f"the test left {sorted(leaked)} in /dev/shm"


def _shm_queues():
    # Only this run's names: other programs on the machine use /dev/shm too.
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"mq.py-{os.getpid()}-")]


@pytest.fixture
def name():
    """A queue name unique to this test process and test."""
    return f"py-{os.getpid()}-{next(_counter)}"


@pytest.fixture
def q(qdir, name):
    """A small queue in the test's directory, removed afterwards."""
    queue = mq.Queue(name, maxsize=8, max_msg_size=1024, dir=qdir)
    yield queue
    queue.close()
    mq.remove(name, dir=qdir)


@pytest.fixture(scope="session")
def mq_bin():
    """The `mq` command (MQ_BIN, set by `cargo xtask test`)."""
    path = os.environ.get("MQ_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            f"MQ_BIN is {path!r}, not an executable `mq` binary: run the tests with "
            "'cargo xtask test', or build it with 'cargo build --bins' and set "
            "MQ_BIN=target/debug/mq"
        )
    return path


@pytest.fixture(scope="session")
def python():
    return sys.executable
