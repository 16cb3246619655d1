"""Joining a multi-worker cluster: `tf.distribute.MultiWorkerMirroredStrategy` from the recipe.

The cluster comes from ``TF_CONFIG`` when it is set (TensorFlow's own convention, what
Kubernetes operators and Vertex AI write), else from ``distribute.workers`` (``host:port``
of every worker, worker 0 first) and this process's ``--worker-index``.

TensorFlow configures its collective ops when the eager context starts, so the strategy
must be created before any other TensorFlow operation of the process: `join` is called
first thing by ``kadvisor fit`` and caches the strategy (one per process).

Bounded waits (``distribute.timeout`` seconds) come from TensorFlow's own machinery:

- at start-up the strategy all-reduces a dummy value to wait for every worker; given a
  timeout it raises instead of waiting forever;
- every collective of a training step gets the same timeout
  (`tf.distribute.experimental.CommunicationOptions`), so a peer that hangs stops it;
- a health-check thread pings every peer and aborts the collectives when one is down,
  so a worker that died is noticed within seconds rather than at the timeout.

The last two are class attributes of TensorFlow's ``CollectiveAllReduceExtended`` read
when the strategy is created (TensorFlow's multi-worker tests set them the same way);
they are the only non-public TensorFlow names kadvisor uses.

Every variable created under the strategy is a collective (the chief broadcasts its
initial value), so every worker must create the same variables in the same order.
Keras's saving breaks that rule: each save or load that meets an optimizer creates a
throwaway ``Optimizer`` (two variables) to learn which attributes to skip, and its cache
of that answer is never hit (Keras 3.15 writes ``saving_attr_skipset_*`` but reads
``saving_attr_skiplist_*``). The chief alone saves the run directory's files and
restores a checkpoint on resume, so `join` fills that cache once, outside the
strategy's scope, where the throwaway variables are local (`_keep_saving_local`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from kadvisor.errors import KadvisorError, RecipeError


class ClusterError(KadvisorError):
    """A worker could not reach its peers, or lost one while training."""


_JOINED: dict = {}  # the process's one strategy and the cluster it joined

# Seconds between health checks of the peers: how quickly a dead worker is noticed.
HEALTH_INTERVAL = 3.0


def join_cluster(recipe, worker_index: int | None = None) -> None:
    """Joins the recipe's cluster (strategy "multi_worker"); nothing for other strategies.

    Raises:
        RecipeError: for a worker index without strategy "multi_worker".
    """
    if recipe.distribute.strategy == "multi_worker":
        join(recipe.distribute, worker_index)
    elif worker_index:
        raise RecipeError(f"--worker-index {worker_index}: only for distribute.strategy "
                          f"'multi_worker' (the recipe has {recipe.distribute.strategy!r})")


def follow(strategy, train, printer=None):
    """Runs ``train(directory)`` for a non-chief worker in a temporary directory.

    Every worker runs the same training code (its callbacks, its commits), as
    TensorFlow's multi-worker guide has it, but only the chief's run directory is kept:
    the others write to a temporary one, removed at the end.

    Args:
        strategy: The joined strategy.
        train: Trains into the given directory; returns the `Run`.
        printer: Receives one-line messages (prefixed with the worker).

    Returns:
        The `Run`, with ``path`` None.
    """
    label = describe(strategy)
    say = (lambda m: printer(f"[{label}] {m}")) if printer else None
    if say:
        say("training with the others; the chief (worker 0) writes the run directory")
    scratch = Path(tempfile.mkdtemp(prefix="kadvisor-worker-"))
    try:
        run = train(scratch, say)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run.path = None
    return run


def join(distribute, worker_index: int | None = None):
    """Returns this process's `MultiWorkerMirroredStrategy`, joining the cluster once.

    Args:
        distribute: The recipe's ``[distribute]`` section.
        worker_index: This worker's position in ``distribute.workers`` (None = 0, the
            chief); ignored when ``TF_CONFIG`` names the task.

    Raises:
        RecipeError: for a cluster that is not described (no TF_CONFIG, no workers) or
            described wrongly.
        ClusterError: when the peers cannot be reached within ``distribute.timeout``, or
            TensorFlow started before the cluster was joined.
    """
    cluster, task = cluster_of(distribute, worker_index)
    if _JOINED:
        if worker_index is None and not os.environ.get("TF_CONFIG"):
            task = _JOINED["cluster"][1]  # the index it joined with
        if _JOINED["cluster"] != (cluster, task):
            raise ClusterError(f"this process already joined the cluster {_JOINED['cluster'][0]} as "
                               f"worker {_JOINED['cluster'][1]}; a process can join one cluster only")
        return _JOINED["strategy"]
    import tensorflow as tf
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective

    timeout = float(distribute.timeout)
    extended = collective.CollectiveAllReduceExtended
    extended._check_health_initial_timeout = timeout  # start-up wait (0 = forever)
    extended._check_health_interval = min(HEALTH_INTERVAL, timeout)
    extended._check_health_timeout = min(10.0, timeout)  # one ping (3 tries before "down")
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": list(cluster)}), task_type="worker", task_id=task,
        rpc_layer="grpc", num_accelerators={"GPU": len(tf.config.list_physical_devices("GPU"))},
    )
    where = f"worker {task} ({cluster[task]}) of {len(cluster)}"
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver,
            communication_options=tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout),
        )
    except RuntimeError as e:
        if "program startup" in str(e):
            raise ClusterError(
                "distribute.strategy 'multi_worker': TensorFlow was started before the cluster "
                "was joined; expected kadvisor.training.cluster.join() before any TensorFlow "
                "operation (kadvisor fit does this)") from None
        raise ClusterError(f"{where}: could not reach the other workers within distribute.timeout "
                           f"= {timeout:g} s ({first_line(e)}); expected every worker of "
                           f"{', '.join(cluster)} started with its own index") from None
    except (ValueError, tf.errors.OpError) as e:
        raise ClusterError(f"{where}: cannot start ({first_line(e)}); expected a free port on "
                           f"this machine and reachable peers") from None
    _keep_saving_local()
    _JOINED.update(strategy=strategy, cluster=(cluster, task))
    return strategy


def _keep_saving_local() -> None:
    """Fills Keras's cache of attributes its saving skips, so that saving and loading
    (by the chief alone) create no variables under the strategy (see module doc).

    Runs outside any strategy scope: the reference objects Keras creates here are local.
    Both cache names are filled, the one Keras writes and the one it reads.
    """
    from keras.src.backend.common import global_state
    from keras.src.saving import saving_lib

    for kind in ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss"):
        skipset = saving_lib.get_attr_skipset(kind)
        global_state.set_global_attribute(f"saving_attr_skiplist_{kind}", skipset)


def cluster_of(distribute, worker_index: int | None = None) -> tuple[tuple[str, ...], int]:
    """``(worker addresses, this worker's index)`` from TF_CONFIG or the recipe.

    Raises:
        RecipeError: naming TF_CONFIG, ``distribute.workers`` or ``--worker-index``.
    """
    if os.environ.get("TF_CONFIG"):
        return _from_tf_config(os.environ["TF_CONFIG"])
    workers = list(distribute.workers)
    if not workers:
        raise RecipeError("distribute.workers: empty and TF_CONFIG is not set; expected the "
                          "host:port of every worker of strategy 'multi_worker', worker 0 first")
    for i, address in enumerate(workers):
        host, _, port = str(address).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RecipeError(f"distribute.workers[{i}]: got {address!r}; expected 'host:port'")
    if len(set(workers)) != len(workers):
        raise RecipeError(f"distribute.workers: got {workers}; expected each address once")
    index = 0 if worker_index is None else worker_index
    if not 0 <= index < len(workers):
        raise RecipeError(f"--worker-index: got {index}; expected 0 to {len(workers) - 1} "
                          f"(distribute.workers has {len(workers)} addresses)")
    return tuple(workers), index


def _from_tf_config(text: str) -> tuple[tuple[str, ...], int]:
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config.get("task", {})
        jobs = [*cluster.get("chief", []), *cluster.get("worker", [])]  # the chief is worker 0
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
        if kind == "worker" and cluster.get("chief"):
            index += len(cluster["chief"])
        elif kind not in ("worker", "chief"):
            raise ValueError(f"task type {kind!r} (evaluators and parameter servers are not used)")
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise RecipeError(f"TF_CONFIG: cannot read it ({first_line(e)}); expected "
                          f'{{"cluster": {{"worker": ["host:port", ...]}}, "task": {{"type": '
                          f'"worker", "index": N}}}}') from None
    if not jobs or not 0 <= index < len(jobs):
        raise RecipeError(f"TF_CONFIG: task index {index} is not in the cluster {jobs}")
    return tuple(jobs), index


def is_multi_worker(strategy) -> bool:
    """True for a `MultiWorkerMirroredStrategy` spanning more than one process."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return sum(len(tasks) for tasks in spec.values()) > 1


def worker_index(strategy) -> int:
    """This process's position in the cluster (0, the chief, without a cluster)."""
    return _JOINED["cluster"][1] if _JOINED and is_multi_worker(strategy) else 0


def is_chief(strategy) -> bool:
    """True for the process that writes the run directory."""
    return worker_index(strategy) == 0


def describe(strategy) -> str:
    """``worker I of N (host:port)`` for messages."""
    cluster, task = _JOINED["cluster"]
    return f"worker {task} of {len(cluster)} ({cluster[task]})"


def first_line(error: BaseException) -> str:
    """The first line of an error's message (TensorFlow's run over many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
