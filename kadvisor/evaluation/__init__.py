"""Evaluation of finished run directories: `kadvisor evaluate` and `kadvisor ensemble`.

    from kadvisor.evaluation.evaluate import evaluate_run
    from kadvisor.evaluation.ensemble import ensemble_runs

Both rebuild the split a run was tested on from its resolved ``recipe.toml`` (and the
K-fold fold recorded in ``data.json``) and load ``model.keras`` with ``safe_mode=True``.
Importing this package does not import TensorFlow.
"""
