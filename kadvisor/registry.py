"""Named registries of components (backbones, heads, data sources, rules).

A registry maps a name used in recipes to an object. Modules register their components
at import time; `Registry.names()` imports the providing module on first use, so the
recipe layer can validate names ("did you mean ...?") without importing TensorFlow —
providers must therefore keep TensorFlow imports inside their builder functions.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Returns " — did you mean 'x'?" for the closest choice, or "" if none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """A name → component mapping with helpful lookup errors.

    Args:
        kind: What the components are, for messages ("backbone", "head", ...).
        provider: Module that registers the components; imported on first lookup.
    """

    def __init__(self, kind: str, provider: str | None = None):
        self.kind = kind
        self._provider = provider
        self._items: dict[str, T] = {}
        self._lock = threading.RLock()

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Registers ``obj`` under ``name``; a name can be registered once."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def _load(self) -> None:
        # Another thread may be importing the provider: wait for it, or it would see an
        # empty registry ("expected one of: "). Reentrant: the provider registers here.
        if self._provider is None:
            return
        with self._lock:
            if self._provider is not None:
                importlib.import_module(self._provider)
                self._provider = None

    def names(self) -> list[str]:
        """Returns the registered names, sorted."""
        self._load()
        return sorted(self._items)

    def get(self, name: str) -> T:
        """Returns the component named ``name``.

        Raises:
            KeyError: with a one-line message listing the choices.
        """
        self._load()
        if name not in self._items:
            raise KeyError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self.names())}; "
                f"expected one of: {', '.join(self.names())}"
            )
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


BACKBONES: Registry = Registry("backbone", "kadvisor.models.backbones")
HEADS: Registry = Registry("head", "kadvisor.models.heads")
SOURCES: Registry = Registry("data source", "kadvisor.data.sources")
