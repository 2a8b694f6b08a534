"""Type stubs for `mq`: a named, bounded, crash-safe multi-process message
queue in shared memory, with the API of multiprocessing.Queue."""

import os
import queue as _queue
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type, Union

__version__: str
DEFAULT_MAXSIZE: int
DEFAULT_MAX_MSG_SIZE: int

Full = _queue.Full
Empty = _queue.Empty

_BytesLike = Union[bytes, bytearray, memoryview]
_Dir = Union[str, "os.PathLike[str]", None]

class Error(Exception):
    """Any other failure; the message names the queue and gives a hint."""

class ShutDown(Error):
    """The queue was shut down: put raises it at once, get once it is drained.
    On Python 3.13 and newer also a subclass of queue.ShutDown."""

class LeaseExpired(Error):
    """ack() or renew() after the lease's deadline (the queue's lease_timeout):
    the message went back to the queue and may be handled twice."""

class DeadLetter:
    """Where a dead letter came from: the queue and its deliveries there."""

    @property
    def queue(self) -> str: ...
    @property
    def deliveries(self) -> int: ...

class Lease:
    """A message taken but not yet acknowledged (from Queue.lease_bytes)."""

    @property
    def data(self) -> bytes: ...
    @property
    def settled(self) -> bool: ...
    @property
    def deliveries(self) -> int: ...
    @property
    def dead_letter(self) -> Optional[DeadLetter]: ...
    def ack(self) -> None: ...
    def renew(self) -> None: ...
    def release(self) -> None: ...
    def __enter__(self) -> "Lease": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException] = None,
        tb: Optional[TracebackType] = None,
    ) -> bool: ...

class LeaseContext:
    """`with q.lease() as obj:` - acks on a normal end, releases on an exception."""

    @property
    def deliveries(self) -> int: ...
    @property
    def dead_letter(self) -> Optional[DeadLetter]: ...
    def renew(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException] = None,
        tb: Optional[TracebackType] = None,
    ) -> bool: ...

class Queue:
    """A named queue: opens `name` in `dir` ($MQ_DIR, else /dev/shm) or creates it."""

    def __init__(
        self,
        name: str,
        maxsize: int = 0,
        max_msg_size: int = 4096,
        *,
        create: bool = True,
        dir: _Dir = None,
        mode: int = 0o600,
        priorities: int = 1,
        lease_timeout: Optional[float] = None,
        max_deliveries: Optional[int] = None,
        dead_letter: Optional[str] = None,
    ) -> None: ...
    def put(
        self, obj: Any, block: bool = True, timeout: Optional[float] = None, *, priority: int = 0
    ) -> None: ...
    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any: ...
    def put_nowait(self, obj: Any, *, priority: int = 0) -> None: ...
    def get_nowait(self) -> Any: ...
    def put_bytes(
        self,
        data: _BytesLike,
        block: bool = True,
        timeout: Optional[float] = None,
        *,
        priority: int = 0,
    ) -> None: ...
    def get_bytes(self, block: bool = True, timeout: Optional[float] = None) -> bytes: ...
    def put_many(
        self,
        objs: Iterable[Any],
        block: bool = True,
        timeout: Optional[float] = None,
        *,
        priority: int = 0,
    ) -> None: ...
    def get_many(
        self,
        block: bool = True,
        timeout: Optional[float] = None,
        max_messages_to_get: int = 1000,
    ) -> List[Any]: ...
    def put_many_bytes(
        self,
        items: Iterable[_BytesLike],
        block: bool = True,
        timeout: Optional[float] = None,
        *,
        priority: int = 0,
    ) -> None: ...
    def get_many_bytes(
        self,
        block: bool = True,
        timeout: Optional[float] = None,
        max_messages_to_get: int = 1000,
    ) -> List[bytes]: ...
    def lease(self, block: bool = True, timeout: Optional[float] = None) -> LeaseContext: ...
    def lease_bytes(self, block: bool = True, timeout: Optional[float] = None) -> Lease: ...
    def qsize(self) -> int: ...
    def empty(self) -> bool: ...
    def full(self) -> bool: ...
    def shutdown(self) -> None: ...
    @property
    def is_shutdown(self) -> bool: ...
    def close(self) -> None: ...
    def join_thread(self) -> None: ...
    def cancel_join_thread(self) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def dir(self) -> Path: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_msg_size(self) -> int: ...
    @property
    def priorities(self) -> int: ...
    @property
    def lease_timeout(self) -> Optional[float]: ...
    @property
    def max_deliveries(self) -> Optional[int]: ...
    @property
    def dead_letter(self) -> Optional[str]: ...
    def stats(self) -> Dict[str, Any]: ...
    def __reduce__(self) -> Tuple[Any, Tuple[str, Path]]: ...

def remove(name: str, dir: _Dir = None) -> None: ...
def _reopen(name: str, dir: _Dir) -> Queue: ...
