"""Every recipe shipped in recipes/ loads, and the bilinear ones say what the issue asks.

The CUB and Flowers recipes need ImageNet weights and TFDS downloads, so here their
model is built without weights at a small input.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kadvisor.cli import main
from kadvisor.recipe import load_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
ALL = sorted(RECIPES.glob("*.toml"))


def test_there_are_recipes():
    names = {p.name for p in ALL}
    assert {"cub200_bilinear.toml", "flowers102_bilinear.toml", "synthetic_bilinear.toml",
            "digits_transfer.toml", "digits_pretrain.toml"} <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_recipe_passes_recipe_check(path):
    result = CliRunner().invoke(main, ["recipe", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_recipe_check_does_not_import_tensorflow():
    import subprocess

    code = ("import sys; from kadvisor.cli import main\n"
            "try: main(['recipe', 'check', sys.argv[1]])\n"
            "except SystemExit as e: assert e.code in (0, None), e.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code, str(RECIPES / "cub200_bilinear.toml")], check=True)


def test_cub_recipe_is_the_published_two_stage_compact_bilinear_recipe():
    r = load_recipe(RECIPES / "cub200_bilinear.toml")
    assert r.data.source == "tfds:caltech_birds2011" and r.data.test_split == "test"
    assert (r.data.resize_to, r.data.image_size, r.data.augment.crop, r.data.augment.flip) == (
        [512, 512], [448, 448], True, "horizontal")
    assert (r.model.backbone, r.model.weights, r.model.feature_layer) == ("vgg16", "imagenet", "block5_conv3")
    assert (r.model.head, r.model.sketch, r.model.pooling_dim) == ("compact_bilinear", "tensor_sketch", 8192)
    assert r.model.signed_sqrt and r.model.l2_normalize
    head, finetune = r.for_stage(0), r.for_stage(1)
    assert [s.trainable for s in r.stages] == ["head", "all"]
    assert (head.optimizer.name, head.optimizer.momentum, head.schedule.name, head.schedule.gamma) == (
        "sgd", 0.9, "multistep", 0.25)
    assert len(head.schedule.steps) == 4 and head.train.accumulate == 4
    assert (finetune.optimizer.learning_rate, finetune.optimizer.weight_decay) == (0.001, 5e-4)
    assert finetune.train.accumulate == 1 and finetune.schedule.name == "constant"


def test_flowers_recipe_uses_the_data_sets_own_splits():
    r = load_recipe(RECIPES / "flowers102_bilinear.toml")
    assert r.data.source == "tfds:oxford_flowers102"
    assert (r.data.train_split, r.data.validation_split, r.data.test_split) == ("train", "validation", "test")
    assert [s.trainable for s in r.stages] == ["head", "all"] and r.model.head == "compact_bilinear"


@pytest.mark.parametrize("name", ["cub200_bilinear.toml", "flowers102_bilinear.toml"])
def test_fine_grained_recipes_build_their_model_without_weights(name):
    from kadvisor.models import build_model
    from kadvisor.training.stages import set_trainable

    r = load_recipe(RECIPES / name, ["model.weights=none", "data.image_size=[64, 64]", "data.resize_to=[72, 72]"])
    model = build_model(r, num_classes=200, input_shape=(64, 64, 3))
    out = model.predict(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32"), verbose=0)
    assert out.shape == (2, 200) and np.isfinite(out).all()
    assert model.get_layer("backbone").output.shape[1:] == (4, 4, 512)  # conv5_3 at 1/16
    assert model.get_layer("classifier").count_params() == 8192 * 200 + 200
    set_trainable(model, r.stages[0].trainable)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"classifier"}
