"""Property test: `diagnose` never raises on arbitrary curves."""

import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kadvisor.advisor import diagnose

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-1e300, max_value=1e300),
    st.just(0.0), st.just(1.0), st.none(),
)
curve = st.lists(values, min_size=0, max_size=60)
names = st.sampled_from(["loss", "val_loss", "accuracy", "val_accuracy", "acc", "val_acc",
                         "mae", "val_mae", "lr", "dice_coef", "val_dice_coef"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, curve, min_size=1, max_size=6))
def test_diagnose_never_raises(history):
    d = diagnose(history)
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
    d = diagnose({**history, "stage": stages, "epoch": epochs}, recipe={"stages": [{"name": "head", "trainable": "head"}]},
                 data={"num_classes": 2, "splits": {"train": {"counts": {"a": 1, "b": 0}}}})
    json.loads(d.to_json())


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.floats(min_value=-1e6, max_value=1e6))
def test_constant_curves_of_any_length(n, value):
    d = diagnose({"loss": np.full(n, value), "val_loss": np.full(n, value)})
    assert "diverged" not in d.labels
