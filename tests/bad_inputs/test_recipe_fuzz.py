"""Hypothesis fuzzing of the recipe loader: any input is a recipe or one RecipeError."""

import string

import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kadvisor.errors import RecipeError
from kadvisor.recipe import Recipe, leaf_fields, recipe_from_text, to_toml
from kadvisor.recipe.load import parse_override, apply_overrides

PATHS = sorted(leaf_fields(Recipe))

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-10**6, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=6), scalars, max_size=3))
# Keys: mostly real paths (deep into validation), some near misses and junk.
keys = st.one_of(
    st.sampled_from(PATHS),
    st.sampled_from(PATHS).map(lambda p: p[:-1] or "x"),
    st.text(string.ascii_lowercase + "._", min_size=1, max_size=20).filter(lambda k: k.strip(".") == k and ".." not in k),
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(text: str):
    try:
        recipe = recipe_from_text(text, "fuzz.toml")
    except RecipeError as e:
        message = str(e)
        assert message.startswith("fuzz.toml"), message
        assert "\n" not in message, message
        return None
    return recipe


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_is_a_recipe_or_one_line_error(text):
    _load(text)


@FUZZ
@given(st.dictionaries(keys, values, max_size=6))
def test_arbitrary_tables_are_a_recipe_or_one_line_error(table):
    doc = tomlkit.document()
    for path, value in table.items():
        try:
            doc[path] = value  # quoted dotted key: parsed as a path by the loader
        except Exception:  # a value TOML cannot hold (e.g. NaN inside nested types)
            continue
    recipe = _load(tomlkit.dumps(doc))
    if recipe is not None:  # a valid recipe survives a round trip through TOML
        again = recipe_from_text(to_toml(recipe), "again.toml")
        assert again.to_dict() == recipe.to_dict()


@FUZZ
@given(st.sampled_from(PATHS), st.text(max_size=40))
def test_set_overrides_never_evaluate_and_fail_in_one_line(path, raw):
    try:
        parsed = parse_override(f"{path}={raw}")
        apply_overrides(Recipe(), [parsed])
    except RecipeError as e:
        assert "\n" not in str(e)
