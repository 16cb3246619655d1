"""Tests of comment-preserving TOML patching (kadvisor.recipe.patch)."""

import tomllib

import pytest

from kadvisor.recipe.patch import apply_patch_to_toml

RECIPE = """\
# my experiment — keep this comment
name = "birds"  # run name
optimizer.learning_rate = 0.1   # dotted key at top level

[data]
source = "sklearn:digits"  # the data

[data.augment]
flip = "none"  # no flips yet

[train]
epochs = 30
"""


def test_sets_existing_values_and_keeps_comments():
    out = apply_patch_to_toml(RECIPE, {"train.epochs": 60, "data.augment.flip": "horizontal"})
    assert "# my experiment — keep this comment" in out
    assert 'source = "sklearn:digits"  # the data' in out
    parsed = tomllib.loads(out)
    assert parsed["train"]["epochs"] == 60
    assert parsed["data"]["augment"]["flip"] == "horizontal"


def test_dotted_top_level_key_is_updated_in_place():
    out = apply_patch_to_toml(RECIPE, {"optimizer.learning_rate": 0.02})
    parsed = tomllib.loads(out)
    assert parsed["optimizer"]["learning_rate"] == 0.02
    assert out.count("learning_rate") == 1
    assert "[optimizer]" not in out


def test_missing_key_in_dotted_parent_and_missing_section_are_created():
    out = apply_patch_to_toml(RECIPE, {"optimizer.weight_decay": 1e-4, "schedule.name": "plateau"})
    parsed = tomllib.loads(out)
    assert parsed["optimizer"] == {"learning_rate": 0.1, "weight_decay": 1e-4}
    assert parsed["schedule"]["name"] == "plateau"
    assert "[schedule]" in out


def test_super_table_child_created_under_existing_parent():
    text = "[data.augment]\nflip = 'none'\n"
    out = apply_patch_to_toml(text, {"data.augment.zoom": 0.1, "data.image_size": [224, 224]})
    parsed = tomllib.loads(out)
    assert parsed["data"]["augment"] == {"flip": "none", "zoom": 0.1}
    assert parsed["data"]["image_size"] == [224, 224]


def test_comment_is_written_next_to_each_changed_line():
    out = apply_patch_to_toml(RECIPE, {"train.epochs": 60}, comment="kadvisor diagnose: still_improving")
    line = next(l for l in out.splitlines() if l.startswith("epochs"))
    assert "# kadvisor diagnose: still_improving" in line
    assert "kadvisor" not in next(l for l in out.splitlines() if l.startswith("source"))


def test_stages_extension_appends_only_new_tables():
    text = RECIPE + '\n[[stages]]\nname = "head"  # frozen backbone\ntrainable = "head"\noptimizer.learning_rate = 1e-3\n'
    old = tomllib.loads(text)["stages"]
    new = old + [{"name": "finetune", "trainable": "all", "optimizer": {"learning_rate": 1e-4}}]
    out = apply_patch_to_toml(text, {"stages": new}, comment="unfreeze")
    assert "# frozen backbone" in out
    parsed = tomllib.loads(out)
    assert [s["name"] for s in parsed["stages"]] == ["head", "finetune"]
    assert parsed["stages"][1]["optimizer"]["learning_rate"] == 1e-4


def test_stages_created_when_absent():
    out = apply_patch_to_toml("name = 'x'\n", {"stages": [{"name": "a", "trainable": "all"}]})
    assert tomllib.loads(out)["stages"] == [{"name": "a", "trainable": "all"}]


def test_untouched_document_is_byte_identical():
    assert apply_patch_to_toml(RECIPE, {}) == RECIPE


def test_path_through_a_value_is_an_error():
    with pytest.raises(ValueError, match="not a table"):
        apply_patch_to_toml(RECIPE, {"name.first": 1})


def test_invalid_toml_is_an_error():
    with pytest.raises(ValueError, match="invalid TOML"):
        apply_patch_to_toml("a = = 1", {"a": 2})
