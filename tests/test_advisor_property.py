"""Property test: `diagnose` never fails on arbitrary curves except with a clear `InputError`.

A log whose loss/metric columns hold no number at all is refused (issue 16: garbage is
never called healthy); everything else is diagnosed and serialises to strict JSON.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kadvisor.advisor import diagnose
from kadvisor.errors import InputError

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-1e300, max_value=1e300),
    st.just(0.0), st.just(1.0), st.none(),
)
curve = st.lists(values, min_size=0, max_size=60)
names = st.sampled_from(["loss", "val_loss", "accuracy", "val_accuracy", "acc", "val_acc",
                         "mae", "val_mae", "lr", "dice_coef", "val_dice_coef"])


def diagnose_or_refused(history, **context):
    """The diagnosis, or None when it was refused rightly: no loss/metric value at all."""
    try:
        return diagnose(history, **context)
    except InputError as e:
        metric_cells = [v for name, c in history.items() if name not in ("lr", "stage", "epoch") for v in c]
        assert all(v is None for v in metric_cells), f"refused a log with values: {e}"
        assert "expected" in str(e) and "'" in str(e), f"refusal does not name the column: {e}"
        return None


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy's would reach the user as "Warning:" lines
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, curve, min_size=1, max_size=6))
def test_diagnose_never_raises(history):
    d = diagnose_or_refused(history)
    if d is None:
        return
    def no_constants(name):
        raise AssertionError(f"JSON contains {name}")

    json.loads(d.to_json(), parse_constant=no_constants)  # strict JSON: no NaN/Infinity
    for f in d.findings + d.undecided:
        assert 0.0 <= f.confidence <= 1.0 and math.isfinite(f.confidence)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, curve, min_size=1, max_size=4),
       st.lists(st.sampled_from(["head", "finetune", "", "x"]), max_size=60),
       st.lists(st.one_of(st.integers(-5, 500), st.floats(allow_nan=True)), max_size=60))
def test_diagnose_never_raises_with_stages_and_epochs(history, stages, epochs):
    d = diagnose_or_refused({**history, "stage": stages, "epoch": epochs},
                            recipe={"stages": [{"name": "head", "trainable": "head"}]},
                            data={"num_classes": 2, "splits": {"train": {"counts": {"a": 1, "b": 0}}}})
    if d is not None:
        json.loads(d.to_json())


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.floats(min_value=-1e6, max_value=1e6))
def test_constant_curves_of_any_length(n, value):
    d = diagnose_or_refused({"loss": list(np.full(n, value)), "val_loss": list(np.full(n, value))})
    assert (d is None) == (n == 0)  # an empty log is refused, any other is read
    assert d is None or "diverged" not in d.labels


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_all_nan_curves_give_no_numpy_warning():
    """The case hypothesis found: an accuracy (and loss) with no finite value at all."""
    nan = [float("nan")] * 6
    for history in ({"loss": nan, "accuracy": nan}, {"loss": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], "accuracy": nan},
                    {"loss": nan, "accuracy": [0.1] * 6, "val_loss": nan}):
        diagnose(history)
