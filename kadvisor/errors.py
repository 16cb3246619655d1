"""Errors raised by kadvisor's library code.

Library code raises these; only `kadvisor.cli` turns them into ``Error: ...`` and an
exit code, so a user never sees a traceback for a mistake in their input.
"""


class KadvisorError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class RecipeError(KadvisorError):
    """A recipe (file, ``--set`` override, stage or search space) is invalid."""


class InputError(KadvisorError):
    """A file given on the command line cannot be read or is not what was expected."""


class DataError(KadvisorError):
    """A data source cannot be loaded or split as the recipe asks."""


class ModelError(KadvisorError):
    """A model cannot be built as the recipe asks (backbone, weights, head)."""
