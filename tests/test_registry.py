"""Registries load their provider module on first use, once, also under threads."""

import sys
import threading

from kadvisor.registry import Registry


def test_threads_wait_for_the_provider_instead_of_seeing_an_empty_registry(tmp_path, monkeypatch):
    registry = Registry("widget", provider="slow_widgets")
    (tmp_path / "slow_widgets.py").write_text(
        "import time\n"
        "from test_registry_target import REGISTRY\n"
        "time.sleep(0.3)  # a provider that takes a while to import (TensorFlow-sized)\n"
        "REGISTRY.add('gear', object())\n"
    )
    target = type(sys)("test_registry_target")
    target.REGISTRY = registry
    monkeypatch.setitem(sys.modules, "test_registry_target", target)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_widgets", raising=False)
    seen, start = [], threading.Barrier(4)

    def look():
        start.wait()
        seen.append(registry.names())

    threads = [threading.Thread(target=look) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [["gear"]] * 4
