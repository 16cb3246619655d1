"""Recipe schema: every field's validation message, unknown keys, overrides, stages."""

import math
import typing

import pytest
import tomlkit

from kadvisor.errors import RecipeError
from kadvisor.recipe import (
    Recipe,
    apply_overrides,
    leaf_fields,
    load_recipe,
    parse_override,
    recipe_from_text,
    to_dict,
    to_toml,
)
from kadvisor.recipe.fields import coerce, ValueProblem

FIELDS = leaf_fields(Recipe)


def _toml_value(value) -> str:
    return tomlkit.item(value).as_string()


def _document(path: str, value) -> tuple[str, int]:
    """A recipe setting ``path`` to ``value``; returns (text, line of the value)."""
    *section, key = path.split(".")
    lines = ["# a comment", 'name = "t"' if path != "name" else ""]
    if section:
        lines.append(f"[{'.'.join(section)}]")
    lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n", len(lines)


def _wrong_type(info):
    annotation = info.annotation
    if annotation is str or typing.get_origin(annotation) is list:
        return 12
    return "twelve"


def _violating(info):
    """A value of the right type that breaks the field's constraint (or None)."""
    if info.check is None:
        return None
    origin = typing.get_origin(info.annotation)
    if origin is list:
        inner = typing.get_args(info.annotation)[0]
        candidates = [[-1, -1], [-1], [1, 2, 3], [0, 0]] if inner is int else [["zz-not-a-class"]]
    elif info.annotation is str:
        candidates = ["adamm", "no-such-choice"]
    elif info.annotation is int:
        candidates = [-1, 0, 1, 10**9]
    elif info.annotation is float:
        candidates = [-1.0, 0.0, 1.0, 1e9]
    else:
        candidates = []
    for value in candidates:
        try:
            coerce(info.annotation, value, info.check)
        except ValueProblem:
            return value
    return None


@pytest.mark.parametrize("path", sorted(FIELDS))
def test_every_field_rejects_a_wrong_type_with_file_line_and_expectation(tmp_path, path):
    info = FIELDS[path]
    bad = _wrong_type(info)
    text, line = _document(path, bad)
    file = tmp_path / "recipe.toml"
    file.write_text(text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(file)
    message = str(caught.value)
    assert message.startswith(f"{file}:{line}: {path} must be "), message
    assert f"got {bad!r}" in message or f"got {bad}" in message


@pytest.mark.parametrize("path", sorted(p for p in FIELDS if _violating(FIELDS[p]) is not None))
def test_every_constrained_field_names_its_constraint(tmp_path, path):
    info = FIELDS[path]
    bad = _violating(info)
    text, line = _document(path, bad)
    file = tmp_path / "recipe.toml"
    file.write_text(text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(file)
    message = str(caught.value)
    assert message.startswith(f"{file}:{line}: {path} must be "), message
    assert info.check.phrase.split()[0] in message


@pytest.mark.parametrize("path", sorted(FIELDS))
def test_every_field_has_help_and_a_valid_default(path):
    info = FIELDS[path]
    assert info.help and "\n" not in info.help and len(info.help) <= 200
    coerce(info.annotation, info.default, None)


def test_example_message_matches_the_documented_form(tmp_path):
    file = tmp_path / "recipe.toml"
    file.write_text("[optimizer]\nname = 'sgd'\n\n\nlearning_rate = -1\n")
    with pytest.raises(RecipeError, match=r"recipe.toml:5: optimizer.learning_rate must be a float > 0, got -1$"):
        load_recipe(file)


def test_unknown_key_gets_did_you_mean(tmp_path):
    file = tmp_path / "r.toml"
    file.write_text("[optimizer]\nlerning_rate = 0.1\n")
    with pytest.raises(RecipeError, match=r"r.toml:2: unknown field 'optimizer.lerning_rate' — did you mean 'optimizer.learning_rate'\?"):
        load_recipe(file)


def test_unknown_section(tmp_path):
    file = tmp_path / "r.toml"
    file.write_text("[optimiser]\nname = 'sgd'\n")
    with pytest.raises(RecipeError, match="unknown field 'optimiser.name' — did you mean 'optimizer.name'"):
        load_recipe(file)


def test_choice_gets_did_you_mean():
    with pytest.raises(RecipeError, match=r"optimizer.name must be one of .*got 'adamm' — did you mean 'adam'\?"):
        recipe_from_text("[optimizer]\nname = 'adamm'\n")


def test_unknown_backbone_lists_choices_without_tensorflow():
    with pytest.raises(RecipeError, match=r"model.backbone .*got 'resnet5O' — did you mean 'resnet50'"):
        recipe_from_text("[model]\nbackbone = 'resnet5O'\n")


def test_invalid_toml_reports_line(tmp_path):
    file = tmp_path / "r.toml"
    file.write_text("name = 'x'\n[data\n")
    with pytest.raises(RecipeError, match=r"r.toml:2: invalid TOML"):
        load_recipe(file)


def test_missing_file():
    with pytest.raises(RecipeError, match="no-such.toml: cannot read recipe"):
        load_recipe("no-such.toml")


def test_int_is_accepted_for_float_but_bool_is_not_int():
    assert recipe_from_text("[optimizer]\nlearning_rate = 1\n").optimizer.learning_rate == 1.0
    with pytest.raises(RecipeError, match="train.epochs must be an integer > 0, got true"):
        recipe_from_text("[train]\nepochs = true\n")


def test_set_overrides_parse_toml_values_and_bare_words():
    assert parse_override("optimizer.learning_rate=3e-4") == ("optimizer.learning_rate", 3e-4)
    assert parse_override("model.backbone=resnet50") == ("model.backbone", "resnet50")
    assert parse_override("data.image_size=[64, 64]") == ("data.image_size", [64, 64])
    recipe = apply_overrides(Recipe(), ["optimizer.learning_rate=3e-4", "train.epochs=5"])
    assert recipe.get("optimizer.learning_rate") == 3e-4 and recipe.train.epochs == 5
    assert Recipe().train.epochs == 30  # the original is not modified


def test_set_unknown_path_is_the_same_message_as_in_a_file():
    with pytest.raises(RecipeError, match=r"--set optimizer.lerning_rate=0.1: unknown field 'optimizer.lerning_rate' — did you mean"):
        apply_overrides(Recipe(), ["optimizer.lerning_rate=0.1"])
    with pytest.raises(RecipeError, match="expected PATH=VALUE"):
        parse_override("optimizer.learning_rate")
    with pytest.raises(RecipeError, match="'optimizer' is a section"):
        apply_overrides(Recipe(), ["optimizer=1"])


def test_stages_validate_overrides_with_their_line():
    text = "[[stages]]\ntrainable = 'head'\ntrain.epochs = 2\n\n[[stages]]\ntrainable = 'all'\noptimizer.learning_rate = -3\n"
    with pytest.raises(RecipeError, match=r"recipe.toml:7: stages\[1\].optimizer.learning_rate must be a float > 0, got -3"):
        recipe_from_text(text)
    with pytest.raises(RecipeError, match=r"stages\[0\].trainable must be 'head', 'all' or 'from:LAYER_NAME', got 'backbone'"):
        recipe_from_text("[[stages]]\ntrainable = 'backbone'\n")
    with pytest.raises(RecipeError, match="cannot change between stages"):
        recipe_from_text("[[stages]]\ndata.source = 'npz:x.npz'\n")


def test_stage_overrides_apply_to_a_copy():
    recipe = recipe_from_text(
        "[optimizer]\nlearning_rate = 0.1\n[[stages]]\nname = 'head'\ntrainable = 'head'\n"
        "[[stages]]\nname = 'ft'\noptimizer.learning_rate = 0.001\ndata.augment.flip = 'horizontal'\n"
    )
    assert [s.name for s in recipe.stages] == ["head", "ft"]
    assert recipe.for_stage(1).optimizer.learning_rate == 0.001
    assert recipe.for_stage(1).data.augment.flip == "horizontal"
    assert recipe.for_stage(0).optimizer.learning_rate == 0.1
    assert recipe.optimizer.learning_rate == 0.1


def test_cross_field_checks():
    with pytest.raises(RecipeError, match="must leave at least 10% for training"):
        recipe_from_text("[data]\nval_fraction = 0.5\ntest_fraction = 0.45\n")
    with pytest.raises(RecipeError, match="schedule.steps must be increasing"):
        recipe_from_text("[schedule]\nname = 'multistep'\nsteps = [10, 5]\n")
    with pytest.raises(RecipeError, match=r"recipe.toml:2: data.source must be one of .*got 'sklern:digits'"):
        recipe_from_text("[data]\nsource = 'sklern:digits'\n")
    with pytest.raises(RecipeError, match="model.weights must be 'imagenet', 'none' or a path"):
        recipe_from_text("[model]\nweights = 'imagenett'\n")


def test_resolved_recipe_round_trips_through_toml_with_help_comments():
    recipe = recipe_from_text(
        "name = 'x'\n[optimizer]\nlearning_rate = 0.01\n[search]\nmax_epochs = 3\n[search.space]\n"
        "'optimizer.learning_rate' = { log_uniform = [1e-4, 1e-1] }\n"
        "[[stages]]\ntrainable = 'head'\ntrain.epochs = 3\n"
    )
    text = to_toml(recipe)
    assert "# base learning rate" in text
    again = recipe_from_text(text)
    assert to_dict(again) == to_dict(recipe)
    assert math.isclose(again.optimizer.learning_rate, 0.01)
