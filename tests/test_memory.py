"""The allocator settings every CLI process starts with (tracker/memory.py)."""

from __future__ import annotations

import subprocess
import sys

from tracker import memory


def test_glibc_is_held_to_one_arena_unless_malloc_arena_max_says_otherwise(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "_glibc_function", lambda name: lambda *values: calls.append((name, *values)))
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    memory.limit_malloc_arenas()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    memory.limit_malloc_arenas()
    assert calls == [("mallopt", -8, 1)]


def test_the_real_mallopt_accepts_the_setting():
    script = ("from tracker import memory; memory.limit_malloc_arenas(); mallopt = memory._glibc_function('mallopt'); "
              "print(mallopt(-8, 1) if mallopt else '')")
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed == ("1\n" if sys.platform.startswith("linux") else "\n")  # glibc's mallopt answers 1: done
