"""Distributed search on KerasTuner's own chief/worker protocol.

KerasTuner distributes a search with three environment variables:
``KERASTUNER_TUNER_ID`` ("chief" for the process that runs the oracle, any other id
for a worker), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``. The chief
serves the oracle over gRPC; each worker asks it for a trial, trains it and reports
back; all of them share the tuning directory. ``kadvisor tune --chief`` / ``--worker
ID`` set those variables (or a user sets them, as for any KerasTuner script).

The chief runs KerasTuner's own `OracleServicer`; only the serving loop is kadvisor's,
because KerasTuner's sleeps 20 s between checks for the end, cannot report progress
and does not say when its port is taken.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from kadvisor.errors import InputError

_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_WAIT = 120  # seconds a worker waits for its chief before giving up


@dataclass(frozen=True)
class Role:
    """What this process does in a search.

    Attributes:
        kind: "single" (the whole search here), "chief" (serve the oracle) or
            "worker" (run trials the chief hands out).
        tuner_id: KerasTuner's id of this process.
        host: Address the chief listens on / workers connect to.
        port: Its port.
        wait: Seconds a worker waits for the chief to answer before giving up.
    """

    kind: str = "single"
    tuner_id: str = "tuner0"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    wait: float = 0.0

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """Sets KerasTuner's variables for this role, restoring the old ones after."""
        saved = {name: os.environ.get(name) for name in _ENV}
        if self.kind == "single":
            for name in _ENV:
                os.environ.pop(name, None)
        else:
            os.environ.update(dict(zip(_ENV, (self.tuner_id, self.host, str(self.port)))))
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def choose_role(chief: bool = False, worker: str | None = None, host: str | None = None,
                port: int | None = None, wait: float | None = None) -> Role:
    """The role from ``--chief``/``--worker``, else from KerasTuner's variables.

    Raises:
        InputError: for ``--chief`` with ``--worker``, a worker id containing "chief"
            (KerasTuner would take it for the chief), or a bad port.
    """
    env = os.environ
    if not chief and worker is None and "KERASTUNER_ORACLE_IP" in env:
        tuner_id = env.get("KERASTUNER_TUNER_ID", "")
        chief, worker = "chief" in tuner_id, None if "chief" in tuner_id else tuner_id
        host = host or env["KERASTUNER_ORACLE_IP"]
        port = port or _port(env.get("KERASTUNER_ORACLE_PORT", ""), "KERASTUNER_ORACLE_PORT")
    if chief and worker is not None:
        raise InputError("--chief and --worker: got both; expected one role per process")
    if worker is not None and (not worker or "chief" in worker):
        raise InputError(f"--worker: got {worker!r}; expected a non-empty id without 'chief' in it")
    port = DEFAULT_PORT if port is None else port
    if not 0 < port < 65536:
        raise InputError(f"--port: got {port}; expected a port number in 1-65535")
    host = host or DEFAULT_HOST
    if chief:
        return Role("chief", "chief", host, port)
    if worker is not None:
        return Role("worker", worker, host, port, DEFAULT_WAIT if wait is None else wait)
    return Role()


def _port(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{name}: got {text!r}; expected a port number") from None


def serve_oracle(oracle, host: str, port: int, on_poll: Callable[[], None] = lambda: None,
                 on_start: Callable[[], None] = lambda: None, poll_seconds: float = 1.0) -> None:
    """Serves ``oracle`` to workers until the search is over and every worker knows.

    The search is over when the oracle has told a worker to stop (Hyperband's
    brackets or ``max_trials`` are done), no trial is running and every worker that
    joined has been told to stop (so none waits forever on a vanished chief).

    Args:
        oracle: The chief tuner's oracle.
        host, port: Address to listen on.
        on_poll: Called about every ``poll_seconds`` (progress, leaderboard).
        on_start: Called once the address is bound.
        poll_seconds: Interval between checks.

    Raises:
        InputError: when the address cannot be bound.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief

    # One thread: the oracle's methods are synchronised, and workers' calls are short.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise InputError(f"--host/--port: cannot listen on {host}:{port}; expected a free port on this machine")
    server.start()
    on_start()
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll_seconds)
            on_poll()
    finally:
        # The grace period lets the last worker receive its "stopped" answer.
        server.stop(grace=2).wait()
    on_poll()


def wait_for_chief(host: str, port: int, seconds: float, say: Callable[[str], None] = lambda m: None) -> None:
    """Blocks until the chief's gRPC port answers, for at most ``seconds``.

    KerasTuner's worker waits for the chief without a limit and without a word (its
    client calls use ``wait_for_ready``); this says what it waits for, and stops.

    Raises:
        InputError: when no chief answered in time.
    """
    import grpc

    say(f"worker: waiting up to {seconds:g} s for the chief at {host}:{port} "
        f"(started with kadvisor tune RECIPE --chief --host {host} --port {port})")
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=seconds)
    except grpc.FutureTimeoutError:
        raise InputError(f"--worker: no chief answered at {host}:{port} within {seconds:g} s; expected "
                         f"kadvisor tune RECIPE --chief running there (or a longer --wait)") from None
    finally:
        channel.close()
