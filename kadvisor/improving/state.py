"""The improve directory and its state file, ``improve.json``.

    improve/<name>-<YYYYmmdd-HHMMSS>/     (or --out DIR)
      improve.json   the loop's state: settings, every finished round, the round in progress
      start.toml     the user's recipe with --set applied, comments kept (what round 0 trains)
      round-00/      one kadvisor run directory per round
      round-01/ ...
      rounds.csv     one row per finished round (kadvisor.improving.rounds)
      best.toml      start.toml with the kept changes written in (kadvisor.improving.best_recipe)
      improve.png    the objective by round, each point labelled with its change

``improve.json`` is written atomically before a round starts (naming it as pending)
and after it ends, so a killed ``improve`` knows which rounds are done and which run
directory to resume; rounds.csv, best.toml and improve.png are rewritten from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kadvisor import rundir
from kadvisor.errors import InputError
from kadvisor.improving.rounds import BASELINE, KEPT, RoundRow

STATE = "improve.json"
START = "start.toml"
ROUNDS = "rounds.csv"
BEST = "best.toml"
PLOT = "improve.png"
KIND = "kadvisor improve"
VERSION = 1


def round_dir(number: int) -> str:
    """The run directory name of round ``number`` (``round-03``)."""
    return f"round-{number:02d}"


@dataclass
class ImproveState:
    """Everything a resumed ``improve`` needs (the content of ``improve.json``).

    Attributes:
        recipe_file: The user's recipe file (for messages; start.toml holds its text).
        overrides: The ``--set`` strings given.
        objective: The validation objective the decisions compare.
        higher_is_better: Its direction.
        rounds: Most rounds after round 0.
        budget: Most epochs of all rounds together (None: no limit).
        min_noise: The floor of the noise margin.
        noise_epochs: How many last epochs of the incumbent the noise is the spread of.
        rows: The finished rounds, in order.
        tried: Keys of the recipes already trained (kept changes + one candidate), so
            no recipe is trained twice.
        pending: The round in progress (a `RoundRow` without results), or None.
        stopped: Why the loop ended last time ("" while it runs).
    """

    recipe_file: str
    overrides: list[str]
    objective: str
    higher_is_better: bool
    rounds: int
    budget: int | None
    min_noise: float
    noise_epochs: int
    rows: list[RoundRow] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    pending: RoundRow | None = None
    stopped: str = ""

    @property
    def kept(self) -> list[RoundRow]:
        """The rounds whose change was kept, in order."""
        return [r for r in self.rows if r.decision == KEPT]

    @property
    def incumbent(self) -> RoundRow | None:
        """The best round so far: the last kept one, else round 0."""
        kept = [r for r in self.rows if r.decision in (BASELINE, KEPT)]
        return kept[-1] if kept else None

    @property
    def epochs_used(self) -> int:
        return sum(r.epochs for r in self.rows)

    def to_json(self) -> dict:
        obj = asdict(self)
        obj["rows"] = [r.to_json() for r in self.rows]
        obj["pending"] = self.pending.to_json() if self.pending is not None else None
        return {"kind": KIND, "version": VERSION, **obj}

    @classmethod
    def from_json(cls, obj: dict) -> "ImproveState":
        values: dict[str, Any] = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        values["rows"] = [RoundRow.from_json(r) for r in obj.get("rows", [])]
        pending = obj.get("pending")
        values["pending"] = RoundRow.from_json(pending) if pending else None
        return cls(**values)


def save(directory: Path, state: ImproveState) -> None:
    """Writes ``improve.json`` atomically."""
    rundir.write_json_atomic(directory / STATE, state.to_json())


def is_improve_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / STATE).is_file()


def new_directory(out: str | os.PathLike | None, name: str) -> Path:
    """The directory of a new ``improve``: ``out`` (new or empty) or ``improve/<name>-<stamp>``.

    Raises:
        InputError: ``out`` is a file, an improve directory already, or a non-empty folder.
    """
    if out is None:
        return rundir.create("improve", name)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {out}: is a file; expected a new or empty folder")
    if is_improve_dir(path):
        raise InputError(f"--out {out}: is an improve directory already; continue it with "
                         f"kadvisor improve --resume {out}, or choose another --out")
    if path.is_dir() and any(path.iterdir()):
        raise InputError(f"--out {out}: exists and is not empty; expected a new or empty folder "
                         f"(kadvisor improve never writes among other files)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def load(directory: str | os.PathLike) -> tuple[ImproveState, str]:
    """The state and starting recipe text of an improve directory (``--resume``).

    Raises:
        InputError: One line when ``directory`` is not an improve directory.
    """
    path = Path(directory)
    if not path.is_dir():
        raise InputError(f"--resume {directory}: no such folder; expected a directory written by kadvisor improve")
    if not (path / STATE).is_file():
        raise InputError(f"--resume {directory}: not a kadvisor improve directory (no {STATE}); "
                         f"expected a directory written by kadvisor improve")
    try:
        obj = rundir.read_json(path / STATE)
        if obj.get("kind") != KIND:
            raise ValueError(f"kind is {obj.get('kind')!r}, not {KIND!r}")
        state = ImproveState.from_json(obj)
        text = (path / START).read_text(encoding="utf-8")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise InputError(f"--resume {directory}: {STATE} or {START} is unreadable ({e}); "
                         f"expected the files kadvisor improve writes") from None
    return state, text


def read_json_or_empty(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
