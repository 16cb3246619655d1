"""Training: optimizers, schedules, callbacks, stages and the `fit` loop.

Mostly Keras's own objects configured from the recipe. Import `kadvisor.training.fit`
for the loop; importing this package alone does not import TensorFlow.
"""
