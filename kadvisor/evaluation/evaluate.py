"""`kadvisor evaluate RUN_DIR`: per-class report, top-k accuracy, confusion matrix, mistakes.

Accuracy hides what practitioners need to see on skewed or fine-grained data: which
classes fail and what they are confused with. This writes, into the run directory
(each file atomically, so an earlier evaluation is replaced whole or not at all):

    evaluation-<split>.json  scikit-learn classification_report per class, top-k
                             accuracy, macro-F1, worst-class recall, log loss, the
                             confusion matrix and the most confident mistakes
    confusion-<split>.png    the confusion matrix, rows normalised per true class
    mistakes-<split>.png     a grid of the most confident mistakes

Per-class figures and the macro averages cover the classes present in the split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kadvisor import rundir
from kadvisor.evaluation.figures import confusion_png, mistakes_png
from kadvisor.evaluation.runs import load_model, open_run, predict_split, scores

TOP_K = (3, 5)
MAX_MISTAKES = 25


@dataclass
class Evaluation:
    """What `evaluate_run` computed and wrote.

    Attributes:
        results: The content of ``evaluation-<split>.json``.
        report: scikit-learn's text classification report.
        files: The files written.
    """

    results: dict
    report: str
    files: list[Path] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """A few lines for the terminal: the report, then the headline figures."""
        r = self.results
        top = ", ".join(f"top-{k} {v:.4f}" for k, v in r["top_k_accuracy"].items())
        lines = [f"{r['split']} split of {r['run']}: {r['size']} examples", "", self.report]
        lines.append(
            f"accuracy {r['accuracy']:.4f}{', ' + top if top else ''}, macro-F1 "
            f"{r['macro_f1']:.4f}, worst-class recall {r['worst_recall']:.4f} "
            f"({r['worst_class']}), log loss {r['log_loss']:.4f}"
        )
        lines.append(f"mistakes: {r['num_mistakes']} of {r['size']}")
        lines += [f"wrote {path}" for path in self.files]
        return lines


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", *, top_k=TOP_K,
                 max_mistakes: int = MAX_MISTAKES) -> Evaluation:
    """Evaluates a run's best model on one split and saves the results beside it.

    Args:
        run_dir: A finished run directory (recipe.toml, data.json, model.keras).
        split: "test", "validation" or "train" (the training split unaugmented).
        top_k: The k of top-k accuracy; those not below the class count are skipped.
        max_mistakes: Most mistakes listed and drawn.

    Returns:
        The `Evaluation`.

    Raises:
        InputError: when ``run_dir`` is not a finished run directory.
        DataError: when the split cannot be rebuilt as it was at training time.
        ModelError: when the model cannot be loaded or does not fit the data.
    """
    from sklearn.metrics import classification_report, confusion_matrix, top_k_accuracy_score

    run = open_run(run_dir)
    names = run.class_names
    k = len(names)
    predictions = predict_split(run, load_model(run), split, keep_mistakes=max_mistakes)
    y, proba = predictions.y, predictions.proba
    predicted = proba.argmax(axis=1)
    present = np.unique(y)
    report_args = dict(labels=present, target_names=[names[c] for c in present], zero_division=0)
    per_class = classification_report(y, predicted, output_dict=True, **report_args)
    headline = scores(y, predicted, proba, k)
    recalls = {name: per_class[name]["recall"] for name in report_args["target_names"]}
    results = {
        "run": str(run.path),
        "split": split,
        "size": int(len(y)),
        "class_names": names,
        **headline,
        "worst_class": min(recalls, key=recalls.get),
        "top_k_accuracy": {
            str(t): float(top_k_accuracy_score(y, proba, k=t, labels=np.arange(k)))
            for t in top_k if 1 < t < k
        },
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y, predicted, labels=np.arange(k)).tolist(),
        "num_mistakes": int(np.sum(predicted != y)),
        "mistakes": most_confident_mistakes(y, proba, names, max_mistakes),
    }
    files = [run.path / f"evaluation-{split}.json", run.path / f"confusion-{split}.png",
             run.path / f"mistakes-{split}.png"]
    title = f"{run.path.name} — {split} ({len(y)} examples)"
    confusion_png(np.array(results["confusion_matrix"]), names, files[1], title)
    shown = [predictions.mistake_images[m["index"]] for m in results["mistakes"]]
    mistakes_png(np.array(shown), [f"{m['true']} → {m['predicted']} ({m['confidence']:.2f})"
                            for m in results["mistakes"]],
                 files[2], f"{title}: most confident mistakes (true → predicted)")
    rundir.write_json_atomic(files[0], results)  # last: its presence means all are done
    return Evaluation(results, classification_report(y, predicted, digits=4, **report_args), files)


def most_confident_mistakes(y: np.ndarray, proba: np.ndarray, names: list[str],
                            limit: int) -> list[dict]:
    """The wrong predictions made with the highest probability, most confident first.

    Args:
        y: True labels.
        proba: Class probabilities ``(N, K)``.
        names: Class names.
        limit: Most mistakes returned.

    Returns:
        ``[{"index", "true", "predicted", "confidence", "true_probability"}]``, where
        ``index`` is the example's position in the split.
    """
    predicted = proba.argmax(axis=1)
    confidence = proba[np.arange(len(y)), predicted]
    wrong = np.flatnonzero(predicted != y)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    return [
        {
            "index": int(i),
            "true": names[y[i]],
            "predicted": names[predicted[i]],
            "confidence": float(confidence[i]),
            "true_probability": float(proba[i, y[i]]),
        }
        for i in order
    ]
