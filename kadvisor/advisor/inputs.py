"""The advisor's input API, kept importable from here: see `kadvisor.advisor.readers`.

``read_target`` reads any supported log (run directory, CSVLogger, History JSON,
TensorBoard, Lightning, Hugging Face, MLflow) into a `Run`; ``from_mapping`` builds one
from a ``History.history``-like mapping.
"""

from kadvisor.advisor.readers import (  # noqa: F401
    READERS,
    Run,
    finite_or_none,
    from_mapping,
    parse_csv_text,
    parse_json_text,
    read_log,
    read_recipe_dict,
    read_run_dir,
    read_target,
)
