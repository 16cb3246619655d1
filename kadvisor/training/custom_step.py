"""A distributed training loop for what Keras 3's ``model.fit`` cannot do.

Two cases need it (`needs_custom_step`):

- several workers (`tf.distribute.MultiWorkerMirroredStrategy`): Keras 3's ``fit`` stops
  before the first step, reducing a batch eagerly across workers (keras-team/keras#20585;
  still so in Keras 3.15);
- gradient accumulation with several replicas: Keras's accumulation runs the update and
  its gradient all-reduce inside a conditional, which MirroredStrategy cannot do
  (keras-team/keras#20582).

`fit_custom` keeps ``model.fit``'s contract for `kadvisor.training.loop.train_stages`: the
same callbacks through Keras's `CallbackList` (history, checkpoint, early stopping,
plateau decay, live advice, progress bar), the same logs (Keras's compiled loss and
metrics, ``val_`` ones from Keras's own ``test_step``), ``model.stop_training``, a
`History`. Only the step is kadvisor's: `tf.distribute.Strategy.run` of a forward and
backward pass, then Keras's ``optimizer.apply`` (which all-reduces the gradients).

Accumulation: with ``train.accumulate = N`` an update averages the gradients of N
micro-batches, each weighted by its size, so it equals one update on their union
(``N x batch_size`` examples) -- also for the epoch's last, shorter group. Gradients are
summed in per-replica variables (no communication) and all-reduced once per update. The
optimizer is built without Keras's own accumulation, so its counter counts updates (the
stage loop compiles it with the matching schedule, see `kadvisor.training.loop`).

Several workers: each worker reads the whole pipeline and keeps its part of each global
batch (auto-shard policy DATA, set explicitly: FILE sharding would split TFDS's files
between workers, unevenly, and sources that are lists of images or arrays have no files
to split), so the global batches are the ones one process would train on. All workers
run the same callbacks on the same logs; after each epoch the chief's decisions (stop,
learning rate) are broadcast so a resumed chief and a fresh worker cannot disagree, and
at each stage start the chief's weights and optimizer state are broadcast. Every worker
creates the optimizer's variables right after compiling (`build_state`), before the
chief restores a checkpoint into them, so the broadcast pairs the same variables.
"""

from __future__ import annotations

import contextlib
import re

import keras

from kadvisor.training.cluster import ClusterError, describe, first_line, is_multi_worker


def needs_custom_step(strategy, accumulate: int) -> bool:
    """True when ``model.fit`` cannot train under this strategy (see module doc)."""
    return is_multi_worker(strategy) or (strategy.num_replicas_in_sync > 1 and accumulate > 1)


def fit_custom(model, train, *, validation=None, initial_epoch: int = 0, epochs: int = 1,
               class_weight: dict | None = None, callbacks=(), accumulate: int = 1,
               verbose: int = 0):
    """Trains epochs ``[initial_epoch, epochs)`` like ``model.fit`` (see module doc).

    Args:
        model: A compiled model, built inside the current strategy's scope.
        train: Batched training dataset (global batch).
        validation: Batched validation dataset, or None.
        initial_epoch: First epoch (0-based).
        epochs: The epoch to stop before.
        class_weight: ``{class_id: weight}``, applied as sample weights.
        callbacks: Keras callbacks.
        accumulate: Micro-batches per update.
        verbose: Keras verbosity (0 silent, 1 progress bar, 2 one line per epoch).

    Returns:
        The `keras.callbacks.History`.

    Raises:
        ClusterError: when a peer worker is lost or does not answer within the timeout.
    """
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    train = _with_class_weight(train, class_weight)
    step = _Step(model, strategy, accumulate, train.element_spec)
    train = _distributed(strategy, train)
    validation = None if validation is None else _distributed(strategy, validation)
    callback_list = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
        verbose=verbose, epochs=epochs, steps=None,
    )
    model.stop_training = False
    logs = {}
    with watching_peers(strategy):
        step.sync_state()
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            for index, loss in enumerate(step.epoch(train)):
                callback_list.on_train_batch_end(index, {"loss": loss})
            step.average_moving_statistics()
            logs = step.results()
            if validation is not None:
                logs.update({f"val_{k}": v for k, v in step.evaluate(validation).items()})
            callback_list.on_epoch_end(epoch, logs)
            step.sync_decisions()
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
    history = next(c for c in callback_list.callbacks if isinstance(c, keras.callbacks.History))
    model.history = history
    return history


@contextlib.contextmanager
def watching_peers(strategy):
    """Turns TensorFlow's errors of a lost or silent peer into one `ClusterError` line.

    Raises:
        ClusterError: naming this worker and, when TensorFlow says, the one that died.
    """
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError, tf.errors.AbortedError) as e:
        if not is_multi_worker(strategy):
            raise
        raise ClusterError(f"{describe(strategy)}: lost contact with the other workers "
                           f"({lost_peer(e)}); a worker died or did not answer within "
                           f"distribute.timeout") from None


def lost_peer(error: BaseException) -> str:
    """What TensorFlow's collective error says about the lost peer, in a few words."""
    text = str(error)
    dead = sorted({int(i) for i in re.findall(r"/job:\w+/replica:\d+/task:(\d+)", text.split("unhealthy", 1)[-1])})
    if "unhealthy" in text and dead:
        return f"worker {', '.join(map(str, dead))} stopped answering its health checks"
    line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", first_line(error))
    return line.replace("Collective ops is aborted by: ", "")


def evaluate(model, dataset) -> dict:
    """``model.evaluate(dataset, return_dict=True)``, through `fit_custom`'s step where
    Keras cannot evaluate (several workers)."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return model.evaluate(dataset, verbose=0, return_dict=True)
    return _Step(model, strategy, 1, dataset.element_spec).evaluate(_distributed(strategy, dataset))


def build_state(model, element_spec) -> None:
    """Creates a compiled model's loss, metric and optimizer variables now, in that order.

    What ``fit`` does first, so that they are not created lazily inside a replica's step.
    Under several workers it must run at the same point on every worker, before the
    chief restores a checkpoint's optimizer state: each variable created is a collective
    broadcast, and workers creating them in different orders fail with a shape mismatch.
    `kadvisor.training.loop.train_stages` calls it after each compile; later calls do
    nothing.

    Args:
        model: A compiled model, built inside the current strategy's scope.
        element_spec: The batches' element spec (``(x, y)`` or ``(x, y, sample_weight)``).
    """
    import tensorflow as tf

    with tf.distribute.get_strategy().scope():
        model._symbolic_build(data_batch=element_spec)
        if not model.optimizer.built:
            model.optimizer.build(list(model.trainable_variables))


def _distributed(strategy, dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _with_class_weight(dataset, class_weight):
    """The dataset with Keras's sample weights for ``class_weight`` (as ``fit`` makes them)."""
    if not class_weight:
        return dataset
    from keras.src.trainers.data_adapters.tf_dataset_adapter import make_class_weight_map_fn

    return dataset.map(make_class_weight_map_fn(class_weight))


class _Step:
    """The per-replica step functions of one stage (one compiled model)."""

    def __init__(self, model, strategy, accumulate: int, element_spec):
        import tensorflow as tf

        self.model, self.strategy, self.accumulate = model, strategy, accumulate
        self.variables = list(model.trainable_variables)
        build_state(model, element_spec)
        with strategy.scope():
            # Per-replica sums (ON_READ: each replica updates its own copy, no communication).
            local = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                         aggregation=tf.VariableAggregation.SUM)
            self.sums = [tf.Variable(tf.zeros_like(v), **local) for v in self.variables] \
                if accumulate > 1 else []
            self.count = tf.Variable(0.0, **local)
        self._add = tf.function(lambda batch: strategy.run(self._add_replica, args=(batch,)),
                                reduce_retracing=True)
        self._apply = tf.function(self._apply_global, reduce_retracing=True)
        self._test = tf.function(lambda batch: strategy.run(model.test_step, args=(batch,)),
                                 reduce_retracing=True)
        self._results = tf.function(model.get_metrics_result)
        self.loss_tracker = next(m for m in model.metrics if m.name == "loss")  # Keras's own

    def epoch(self, dataset):
        """Trains one pass over a distributed dataset; yields each update's loss."""
        iterator = iter(dataset)
        batch, pending = next(iterator, None), 0
        while batch is not None:
            following = next(iterator, None)
            pending += 1
            if pending == self.accumulate or following is None:
                yield self._apply(batch)
                pending = 0
            else:
                self._add(batch)
            batch = following

    def evaluate(self, dataset) -> dict:
        """Keras's ``test_step`` over a distributed dataset; returns the metrics."""
        self.model.reset_metrics()
        for batch in dataset:
            self._test(batch)
        return self.results()

    def results(self) -> dict:
        """The model's metrics, reduced over every replica, as Python floats."""
        return {k: float(v) for k, v in self._results().items()}

    def _gradients(self, batch):
        """Keras's ``train_step`` up to the gradients (same loss, scaling and metrics)."""
        import tensorflow as tf

        model = self.model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        size = tf.shape(tf.nest.flatten(x)[0])[0]
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            # compute_loss divides by the replicas (the all-reduce sums); the metric wants the mean.
            self.loss_tracker.update_state(loss * self.strategy.num_replicas_in_sync, sample_weight=size)
            scaled = model.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return grads, tf.cast(size, tf.float32), loss

    def _add_replica(self, batch):
        grads, size, _ = self._gradients(batch)
        for total, grad in zip(self.sums, grads):
            total.assign_add(grad * size)
        self.count.assign_add(size)

    def _apply_replica(self, batch):
        import tensorflow as tf

        grads, size, loss = self._gradients(batch)
        if self.accumulate > 1:
            count = self.count + size
            grads = [(total + grad * size) / count for total, grad in zip(self.sums, grads)]
            for total in self.sums:
                total.assign(tf.zeros_like(total))
            self.count.assign(0.0)
        self.model.optimizer.apply(grads, self.variables)
        return loss

    def _apply_global(self, batch):
        import tensorflow as tf

        loss = self.strategy.run(self._apply_replica, args=(batch,))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)

    def sync_state(self) -> None:
        """Gives every worker the chief's weights and optimizer state (a resumed chief
        restored them from its checkpoint; the others start from their own)."""
        if is_multi_worker(self.strategy):
            variables = list(self.model.variables) + list(self.model.optimizer.variables)
            for variable, value in zip(variables, broadcast(self.strategy, variables)):
                variable.assign(value)

    def average_moving_statistics(self) -> None:
        """Replaces each replica's BatchNormalization moving mean and variance (updated
        from its own examples only) by their mean over the replicas, so that every
        replica validates, and the chief saves, the same model."""
        moving = [v for layer in _layers(self.model)
                  if isinstance(layer, keras.layers.BatchNormalization) and layer.built
                  for v in (layer.moving_mean, layer.moving_variance)]
        if moving and self.strategy.num_replicas_in_sync > 1:
            for variable, value in zip(moving, average(self.strategy, moving)):
                variable.assign(value)

    def sync_decisions(self) -> None:
        """Makes the chief's end-of-epoch decisions (stop, learning rate) everyone's."""
        if not is_multi_worker(self.strategy):
            return
        optimizer = self.model.optimizer
        stop, rate = broadcast(self.strategy, [float(bool(self.model.stop_training)),
                                      float(keras.ops.convert_to_numpy(optimizer.learning_rate))])
        self.model.stop_training = bool(float(stop))
        if float(rate) != float(keras.ops.convert_to_numpy(optimizer.learning_rate)):
            optimizer.learning_rate = float(rate)  # only a plain rate differs (plateau decay)


def _layers(model):
    for layer in getattr(model, "layers", []):  # backbones and heads are nested models
        yield layer
        yield from _layers(layer)


def broadcast(strategy, values: list) -> list:
    """The chief's values on every worker (every worker must call this at the same point).

    Args:
        strategy: The strategy.
        values: Numbers, tensors or variables.

    Returns:
        Tensors of the values' dtypes holding replica 0's (the chief's) values.
    """
    return _all_reduce(strategy, values, first_only=True)


def average(strategy, values: list) -> list:
    """The mean over the replicas of each value (read in each replica's own copy)."""
    return _all_reduce(strategy, values, first_only=False)


def _all_reduce(strategy, values: list, first_only: bool) -> list:
    import tensorflow as tf

    tensors = [tf.convert_to_tensor(v) for v in values]
    replicas = strategy.num_replicas_in_sync

    def replica(*tensors):
        context = tf.distribute.get_replica_context()
        if first_only:  # a sum to which only replica 0 adds
            weight = tf.cast(context.replica_id_in_sync_group == 0, tf.float64)
        else:
            weight = tf.constant(1.0 / replicas, tf.float64)
        return context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.cast(t, tf.float64) * weight for t in tensors])

    def run():
        if first_only:
            return strategy.run(replica, args=tensors)
        return strategy.run(lambda: replica(*[tf.convert_to_tensor(v) for v in values]))

    reduced = tf.function(run)()
    local = [strategy.experimental_local_results(r)[0] for r in reduced]
    return [tf.cast(r, t.dtype) for r, t in zip(local, tensors)]


def weights_digest(model) -> str:
    """A short SHA-256 of the model's weights (equal on workers that trained in step)."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]
