"""The Python programs of the tutorial's chapter 6 (docs/tutorial/06-python.md
and its Chinese edition) are run here: each ```python block is saved to a
file and run in a fresh directory with its own MQ_DIR; a ```text block right
after it is the output it must print (`[..]` in a line stands for any text)."""

import os
import re
import sys
from pathlib import Path

import pytest

import workers

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "06-python.md"
EDITIONS = [ROOT / "docs/tutorial" / CHAPTER, ROOT / "docs/tutorial/zh" / CHAPTER]

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def blocks(path):
    """(info, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]


def programs(path):
    """(index, code, expected output or None) of every python block."""
    found = blocks(path)
    out = []
    for i, (info, body) in enumerate(found):
        if info != "python":
            continue
        nxt = found[i + 1] if i + 1 < len(found) else None
        expected = nxt[1] if nxt and nxt[0] == "text" else None
        out.append((i, body, expected))
    return out


def matches(pattern, line):
    parts = [re.escape(p) for p in pattern.split("[..]")]
    return re.fullmatch(".*".join(parts), line) is not None


def test_both_editions_have_the_same_python_code():
    en, zh = (
        [(info, body) for info, body in blocks(p) if info in ("python", "text")]
        for p in EDITIONS
    )
    assert [b for b in en if b[0] == "python"], f"no python blocks in {EDITIONS[0]}"
    assert en == zh, "the python and text blocks of the two editions differ"


@pytest.mark.parametrize(
    "index,code,expected",
    programs(EDITIONS[0]),
    ids=lambda v: f"block{v}" if isinstance(v, int) else "",
)
def test_chapter_program(index, code, expected, tmp_path, qdir):
    script = tmp_path / f"block{index}.py"
    script.write_text(code)
    env = dict(os.environ, MQ_DIR=qdir, PYTHONUNBUFFERED="1")
    run = workers.run_in_own_group([sys.executable, str(script)], 90, cwd=tmp_path, env=env)
    assert run.returncode == 0, f"block {index} failed:\n{run.stdout}\n{run.stderr}"
    if expected is not None:
        got = run.stdout.rstrip("\n").split("\n")
        want = expected.rstrip("\n").split("\n")
        assert len(got) == len(want) and all(
            matches(w.rstrip(), g.rstrip()) for w, g in zip(want, got)
        ), f"block {index} printed:\n{run.stdout}\nexpected:\n{expected}"
