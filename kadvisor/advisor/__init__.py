"""The advisor: reads learning curves and recommends the next recipe change.

Pure Python + numpy; ``import kadvisor.advisor`` never imports TensorFlow or Keras.
`AdvisorCallback` (live advice during ``fit``) needs Keras and is loaded lazily on
first access.
"""

from kadvisor.advisor.engine import Diagnosis, diagnose
from kadvisor.advisor.findings import Action, Finding
from kadvisor.advisor.rules import RULES

__all__ = ["Action", "AdvisorCallback", "Diagnosis", "Finding", "RULES", "diagnose"]


def __getattr__(name):
    # Lazy: the callback subclasses keras.callbacks.Callback.
    if name == "AdvisorCallback":
        from kadvisor.advisor.callback import AdvisorCallback

        return AdvisorCallback
    raise AttributeError(f"module 'kadvisor.advisor' has no attribute '{name}'")
