"""The allocator settings every CLI process starts with (tracker/memory.py)."""

from __future__ import annotations

import gc
import subprocess
import sys

from tracker import memory
from tracker.cli import base


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


def test_the_collector_runs_less_often(monkeypatch):
    monkeypatch.setattr(gc, "set_threshold", lambda *values: set_to.append(values))
    set_to: list[tuple[int, ...]] = []
    memory.collect_less()
    assert set_to == [(10_000, 20, 100)]


def test_every_cli_process_starts_with_both_settings(monkeypatch):
    done = []
    monkeypatch.setattr(memory, "limit_malloc_arenas", lambda: done.append("arenas"))
    monkeypatch.setattr(memory, "collect_less", lambda: done.append("collector"))
    monkeypatch.setattr(sys, "argv", ["tracker", "--help"])
    base.main()
    assert done == ["arenas", "collector"]


def test_a_cycle_is_still_freed_under_the_new_thresholds():
    script = ("import gc, weakref; from tracker import memory; memory.collect_less()\n"
              "class Node: pass\n"
              "node = Node(); node.me = node; gone = weakref.ref(node); del node\n"
              "kept = [[] for _ in range(12_000)]\n"
              "print(gone() is None, gc.get_threshold())")
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed == "True (10000, 20, 100)\n"
