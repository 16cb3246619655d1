"""Bilinear head layers: exact values, unbiased sketches, gradients, saving, mixed precision.

Every registered head meets the same contract (finite gradients on all-zero features,
identical outputs after a safe_mode save/load, float32 pooling under mixed_float16);
the bilinear layers are checked against explicit numpy definitions.
"""

import numpy as np
import pytest

import keras
import tensorflow as tf

from kadvisor.models import build_model
import kadvisor.models.heads.compact_bilinear as cb
from kadvisor.models.heads.bilinear_layers import BilinearPooling, L2Normalize, SignedSqrt
from kadvisor.models.heads.compact_bilinear import CompactBilinearPooling
from kadvisor.recipe import Recipe
from kadvisor.registry import HEADS
from kadvisor.training.devices import precision


def _recipe(**values) -> Recipe:
    recipe = Recipe()
    for path, value in values.items():
        recipe.set(path.replace("__", "."), value)
    return recipe


def _numpy(t):
    return keras.ops.convert_to_numpy(t)


def _sketch_weights(layer):
    return {w.name: _numpy(w) for w in layer.weights}


# --- Full bilinear pooling ----------------------------------------------------------


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_bilinear_pooling_equals_the_explicit_outer_product_sum(reduction):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    y = rng.normal(size=(2, 3, 4, 7)).astype("float32")
    for inputs, second in ((x, x), ([x, y], y)):
        got = _numpy(BilinearPooling(reduction=reduction)(inputs))
        for b in range(2):
            expected = sum(np.outer(x[b, h, w], second[b, h, w]) for h in range(3) for w in range(4))
            expected = expected / 12 if reduction == "mean" else expected
            np.testing.assert_allclose(got[b], expected.ravel(), rtol=1e-5, atol=1e-5)


def test_bilinear_layers_reject_bad_arguments_with_the_value_received():
    with pytest.raises(ValueError, match="Received: reduction='max'"):
        BilinearPooling(reduction="max")
    with pytest.raises(ValueError, match="spatial shapes must match"):
        BilinearPooling()([np.zeros((1, 2, 2, 3)), np.zeros((1, 3, 3, 3))])
    with pytest.raises(ValueError, match=r"Received shape \(2, 3\)"):
        BilinearPooling()(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Received: epsilon=0"):
        SignedSqrt(epsilon=0)
    with pytest.raises(ValueError, match="Received: output_dim=0"):
        CompactBilinearPooling(0)
    with pytest.raises(ValueError, match="Received: method='fft'"):
        CompactBilinearPooling(8, method="fft")
    with pytest.raises(ValueError, match="Received: seed=-1"):
        CompactBilinearPooling(8, seed=-1)


# --- Compact bilinear pooling: exact definitions --------------------------------------


def _explicit_tensor_sketch(x, y, p, d):
    """sum_l TS(x_l outer y_l) straight from its definition as a count sketch of the
    outer product with hash (h1(i) + h2(j)) mod d and sign s1(i) s2(j)."""
    out = np.zeros((x.shape[0], d))
    for b in range(x.shape[0]):
        gram = x[b].T.astype("float64") @ y[b]
        for i in range(x.shape[-1]):
            for j in range(y.shape[-1]):
                t = (p["hash_1"][i] + p["hash_2"][j]) % d
                out[b, t] += p["sign_1"][i] * p["sign_2"][j] * gram[i, j]
    return out


@pytest.mark.parametrize("d", [16, 17])  # odd d: irfft needs its fft_length
def test_both_tensor_sketch_routes_equal_the_definition(d):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 5)).astype("float32")
    y = rng.normal(size=(2, 6, 3)).astype("float32")
    p = cb.draw_sketch_parameters("tensor_sketch", 3, 5, 3, d)
    expected = _explicit_tensor_sketch(x, y, p, d)
    args = (p["hash_1"], p["sign_1"], p["hash_2"], p["sign_2"], d)
    for route in (cb.tensor_sketch_pool, cb.tensor_sketch_pool_gram):
        np.testing.assert_allclose(_numpy(route(x, y, *args)), expected, rtol=1e-4, atol=1e-4)


def test_count_sketch_is_a_scatter_equal_to_the_dense_sketch_matrix():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(7, 9)).astype("float32")
    hashes = rng.integers(0, 4, 9).astype("int32")
    signs = rng.choice([-1.0, 1.0], 9).astype("float32")
    dense = np.zeros((9, 4), "float32")
    dense[np.arange(9), hashes] = signs
    np.testing.assert_allclose(_numpy(cb.count_sketch(features, hashes, signs, 4)), features @ dense, rtol=1e-5, atol=1e-5)


def test_random_maclaurin_equals_its_definition():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 4, 6)).astype("float32")
    layer = CompactBilinearPooling(32, method="random_maclaurin", seed=5)
    got = _numpy(layer(x))
    w = _sketch_weights(layer)
    features = x.reshape(2, 16, 6)
    expected = ((features @ w["projection_1"]) * (features @ w["projection_2"])).sum(axis=1) / np.sqrt(32)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_layer_routes_agree_and_the_cheaper_route_is_chosen_by_shape():
    # Calibrated crossovers (see gram_route_is_cheaper): VGG16 28x28x512 at d=8192 goes
    # through the Gram matrix, 2048-channel ResNet features through the FFT.
    assert cb.gram_route_is_cheaper(512, 512, 8192) and cb.gram_route_is_cheaper(512, 512, 1024)
    assert not cb.gram_route_is_cheaper(2048, 2048, 8192) and not cb.gram_route_is_cheaper(2048, 2048, 1024)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 5, 5, 40)).astype("float32")
    layer = CompactBilinearPooling(8, seed=1)  # 40*40 > 32*8*3: the FFT route
    assert not cb.gram_route_is_cheaper(40, 40, 8)
    fft_out = _numpy(layer(x))
    p = _sketch_weights(layer)
    gram_out = _numpy(cb.tensor_sketch_pool_gram(x.reshape(2, 25, 40), x.reshape(2, 25, 40), p["hash_1"], p["sign_1"], p["hash_2"], p["sign_2"], 8))
    np.testing.assert_allclose(fft_out, gram_out, rtol=1e-4, atol=1e-3)


def test_sketch_parameters_are_drawn_from_the_seed_and_independent_per_input():
    layer = CompactBilinearPooling(64, seed=7)
    layer.build((None, 2, 2, 10))
    w = _sketch_weights(layer)
    drawn = cb.draw_sketch_parameters("tensor_sketch", 7, 10, 10, 64)
    for name, values in drawn.items():
        np.testing.assert_array_equal(w[name], values)
    assert not np.array_equal(w["hash_1"], w["hash_2"])  # y = x still gets its own sketch
    assert all(not layer_weight.trainable for layer_weight in layer.weights)


# --- Unbiasedness of <phi(x), phi(y)> for <x, y>^2, with a derived tolerance ---------
#
# For one location, est = <phi(x, x), phi(y, y)> and its target is mu = <x, y>^2.
# Write n = |x|^2 |y|^2 and A = sum_i |x_i y_i| (A^2 <= n by Cauchy-Schwarz).
#
# Tensor Sketch. est = sum_{P,Q} sig_P sig_Q u_P v_Q [hP = hQ] over index pairs P = (i,j),
# Q = (k,l), with u_P = x_i x_j, v_Q = y_k y_l, sig_P = s1(i) s2(j), hP = h1(i)+h2(j) mod d.
# The P = Q terms sum to mu exactly; every P != Q term has mean 0 (a lone sign), so the
# estimate is unbiased and Var = E[W^2] for W the off-diagonal sum. E[W^2] is a sum over
# (P,Q,P',Q') of u_P v_Q u_P' v_Q' E[signs] E[collisions]. E[signs] is 1 when the first
# indices (i,k,i',k') pair up and the second (j,l,j',l') pair up, else 0; and for P != Q
# E[[hP = hQ][hP' = hQ']] <= P(hP = hQ) = 1/d. Each coordinate's pairing contributes a
# factor A^2 (i=k, i'=k'), |x|^2 |y|^2 (i=i', k=k') or A^2 (i=k', k=i') to a bound on the
# sum of absolute terms, and the one combination with P = Q (i=k and j=l) is excluded, so
#     Var_TS <= ((2 A^2 + |x|^2|y|^2)^2 - A^4) / d <= 8 n^2 / d.
#
# Random Maclaurin. est = (1/d) sum_t Z_t with Z_t = (a.x)(a.y)(b.x)(b.y) i.i.d. over the
# d columns (a, b independent +-1 vectors), E Z = mu, and by the Rademacher fourth moment
# E[(a.x)^2 (a.y)^2] = n + 2 mu - 2 sum_i x_i^2 y_i^2 =: m, so exactly
#     Var_RM = (m^2 - mu^2) / d.
#
# Averaging S independent seeds divides the variance by S. The test allows 6 standard
# deviations of that average: by Chebyshev a correct sketch fails with probability at
# most 1/36 whatever the distribution, and about 2e-9 by the central limit theorem (S is
# large). A negative control -- the same estimator with the second sketch equal to the
# first, a classic bug -- must land outside the tolerance, so the test can fail.

_SEEDS, _DIM, _CHANNELS = 600, 64, 6


def _pair_of_vectors():
    rng = np.random.default_rng(11)
    x = rng.normal(size=_CHANNELS)
    y = 0.9 * x + 0.45 * rng.normal(size=_CHANNELS)  # cos(x, y) ~ 0.9: mu ~ 0.8 n
    return x, y


def _mean_estimate(method, shared_sketch=False):
    x, y = _pair_of_vectors()
    inputs = np.stack([x, y]).reshape(2, 1, 1, _CHANNELS).astype("float32")
    layer = CompactBilinearPooling(_DIM, method=method, seed=0)
    layer.build(inputs.shape)
    names = [w.name for w in layer.weights]
    call = tf.function(layer.call)
    estimates = []
    for seed in range(_SEEDS):
        drawn = cb.draw_sketch_parameters(method, seed, _CHANNELS, _CHANNELS, _DIM)
        if shared_sketch:
            for name in list(drawn):
                if name.endswith("_2"):
                    drawn[name] = drawn[name[:-1] + "1"]
        layer.set_weights([drawn[name] for name in names])
        out = _numpy(call(inputs)).astype("float64")
        estimates.append(out[0] @ out[1])
    return float(np.mean(estimates))


def _tolerance(method):
    x, y = _pair_of_vectors()
    n, mu = (x @ x) * (y @ y), (x @ y) ** 2
    if method == "tensor_sketch":
        a2 = np.abs(x * y).sum() ** 2
        variance = ((2 * a2 + (x @ x) * (y @ y)) ** 2 - a2**2) / _DIM
    else:
        m = n + 2 * mu - 2 * np.sum(x**2 * y**2)
        variance = (m**2 - mu**2) / _DIM
    return mu, 6 * np.sqrt(variance / _SEEDS)


@pytest.mark.parametrize("method", cb.METHODS)
def test_compact_bilinear_is_an_unbiased_estimate_of_the_squared_inner_product(method):
    mu, tolerance = _tolerance(method)
    assert tolerance < 0.25 * mu  # the bound is tight enough to mean something
    assert abs(_mean_estimate(method) - mu) <= tolerance
    # Negative control: one sketch used twice is biased (TS: every i != j pair collides
    # with its mirror; RM: E[(a.x)^2 (a.y)^2] != <x, y>^2), and the test sees it.
    assert abs(_mean_estimate(method, shared_sketch=True) - mu) > tolerance


# --- Signed square root and L2 normalisation ------------------------------------------


def test_signed_sqrt_is_exact_forward_with_a_bounded_gradient():
    x = tf.constant([-4.0, -1e-12, 0.0, 1e-12, 9.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = SignedSqrt(epsilon=0.1)(x)
    grad = _numpy(tape.gradient(y, x))
    np.testing.assert_allclose(_numpy(y), [-2.0, -1e-6, 0.0, 1e-6, 3.0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(grad, 0.5 / (np.sqrt(np.abs(_numpy(x))) + 0.1), rtol=1e-4)
    assert grad.max() <= 0.5 / 0.1 + 1e-4


def test_l2_normalize_gives_unit_norm_and_zero_for_zero_without_nan():
    x = tf.constant([[3.0, 4.0], [0.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = L2Normalize()(x)
    np.testing.assert_allclose(_numpy(y), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert np.isfinite(_numpy(tape.gradient(y, x))).all()


# --- Every registered head: one contract ----------------------------------------------


# Each registered head, and compact_bilinear with each sketch method.
VARIANTS = [(head, sketch) for head in HEADS.names()
            for sketch in (cb.METHODS if head == "compact_bilinear" else ("tensor_sketch",))]


def _head_recipe(head, sketch="tensor_sketch", **extra):
    return _recipe(model__head=head, model__sketch=sketch, model__pooling_dim=64, model__width=4, **extra)


@pytest.mark.parametrize("head,sketch", VARIANTS)
def test_every_head_has_finite_gradients_on_all_zero_features(head, sketch):
    head_layer = HEADS.get(head)(_head_recipe(head, sketch))
    classifier = keras.layers.Dense(3)
    features = tf.zeros((2, 4, 4, 8))
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = tf.reduce_sum(classifier(head_layer(features)) ** 2) + tf.reduce_sum(classifier(head_layer(features)))
    grads = tape.gradient(loss, [features, *classifier.trainable_variables])
    assert all(g is not None and np.isfinite(_numpy(g)).all() for g in grads)


@pytest.mark.parametrize("head,sketch", VARIANTS)
def test_every_head_round_trips_through_a_safe_mode_save_with_identical_outputs(head, sketch, tmp_path, monkeypatch):
    model = build_model(_head_recipe(head, sketch, model__dropout=0.1), num_classes=3, input_shape=(16, 16, 3))
    x = np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    # The sketch must come from the file, not be re-drawn: break the drawing on load.
    real_draw = cb.draw_sketch_parameters
    monkeypatch.setattr(cb, "draw_sketch_parameters", lambda method, seed, *a: real_draw(method, seed + 1, *a))
    again = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("head,sketch", VARIANTS)
def test_every_head_trains_under_mixed_float16_with_float32_pooling(head, sketch):
    x = np.random.default_rng(2).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    with precision("mixed_float16"):
        model = build_model(_head_recipe(head, sketch), num_classes=3, input_shape=(8, 8, 3))
        # One eager training step (a compiled train_step would only add tracing time).
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = keras.losses.sparse_categorical_crossentropy(np.array([0, 1, 2, 0]), out)
        grads = tape.gradient(loss, model.trainable_variables)
    assert model.get_layer("backbone").compute_dtype == "float16"  # mixed precision is on
    assert np.isfinite(_numpy(loss)).all() and all(np.isfinite(_numpy(g)).all() for g in grads)
    head_dtype = keras.backend.standardize_dtype(model.get_layer("head").output.dtype)
    assert head_dtype == ("float16" if head == "gap" else "float32")


def test_bilinear_pooling_of_float16_features_does_not_overflow():
    # 64 locations of features near 100: the pooled sum 64 * 100^2 = 640,000 is far
    # beyond float16's 65,504, so the layers must pool in float32.
    features = np.full((1, 8, 8, 2), 100.0, "float16")
    with precision("mixed_float16"):
        full = _numpy(BilinearPooling()(features))
        compact = CompactBilinearPooling(16)
        sketched = _numpy(compact(features))
    np.testing.assert_array_equal(full, np.full((1, 4), 640000.0, "float32"))
    assert sketched.dtype == np.float32
    np.testing.assert_allclose(sketched, _numpy(compact(features.astype("float32"))))
