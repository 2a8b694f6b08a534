"""The module imports and a message goes round."""

import mq


def test_put_get_round_trip(q):
    q.put({"hello": [1, 2]})
    assert q.get(timeout=5) == {"hello": [1, 2]}
