"""From symptoms to a cause: rank by what to change, not by what the curve looks like.

The curve rules name shapes (stalled, still_improving, noisy_validation...). Several
shapes often have one cause, and the cure for the shape can be wrong for the cause: a
run stuck at chance with a learning rate of 5.0 also "underfits" and has "noisy"
validation, but neither less weight decay nor a larger validation set will help it.
`explain` reads the run's `RunContext` (recipe, classes, data sizes), decides whether
one cause accounts for the worst findings, and if so

- puts the finding that shows it first, with the action that removes the cause first
  (and creates that finding when no curve rule fired: a 3-epoch run is too short for
  ``still_improving`` by the rubric, but its recipe says training was cut short);
- folds the findings the cause explains into it as evidence (``explains``) instead of
  listing their actions as competing advice.

The causes, in the order they are checked (the first that applies wins):

1. SGD with gradients clipped to a norm below 0.01, which caps every step (so the
   learning rate is not judged on its own);
2. the learning rate far outside its optimizer's usual range, with a run that is stuck,
   diverging, unstable or crawling;
3. an exponential or multistep schedule that cut the learning rate far below its
   optimizer's range in the first half of the run;
4. decoupled weight decay that erases each epoch's progress;
5. a run at chance level with none of the above: data, labels or loss;
6. training cut short — too few epochs, or early stopping with a patience of 1–2 epochs;
7. too few optimizer updates per epoch (a batch as large as the training set);
8. augmentation or label smoothing far beyond the usual behind a model that cannot fit
   its training set (rotation factors above 0.25, i.e. beyond ±90°, shifts above 30 %
   of the image; smoothing of 0.4 or more);
9. too little capacity (a built-in CNN a few filters wide) or crushing dropout.
10. skewed classes (``class_imbalance``) come before curve symptoms;
11. a run that learns nothing (``stalled``) for no reason the recipe shows: its wobbling
    loss, noisy validation and high training loss are folded into it;
12. a run crawling at a learning rate it logged as far below every usual range
    (``slow_convergence`` read from the rate): raising it leads, and "still improving" is
    folded into it — more epochs at that rate is the slow way to the same place;
13. a run still clearly improving when it ended: validation better than training and
    underfitting are what an unfinished regularised run looks like, so "train longer" leads.

Noisy validation alone, on a recipe whose learning rate is in range, has no cause in
training: it becomes a note (`_reading_noise`) and the run is healthy.

Without a recipe only what the curves make evident is used (a loss at ln K).
"""

from __future__ import annotations

import numpy as np

from kadvisor.advisor import curves as C
from kadvisor.advisor.context import (
    CRUSHING_DECAY,
    EXTREME_DROPOUT,
    FEW_UPDATES,
    HEAVY_DROPOUT,
    HEAVY_LABEL_SMOOTHING,
    SMALL_WIDTH,
    TINY_CLIPNORM,
    USUAL_CLIPNORM,
    USUAL_LABEL_SMOOTHING,
    RunContext,
)
from kadvisor.advisor.features import RunFeatures
from kadvisor.advisor.findings import Action, Finding
from kadvisor.advisor.readers.run import get_path
from kadvisor.advisor.rules.setup import near_perfect

# Findings that are symptoms of a broken optimisation: folded into its cause.
_OPTIMISATION_SYMPTOMS = {"noisy_validation", "underfitting", "plateau", "still_improving",
                          "slow_convergence", "val_better_than_train", "unstable", "stalled",
                          "overfitting"}
_UNFINISHED_SYMPTOMS = {"val_better_than_train", "underfitting"}
_STUCK_SYMPTOMS = {"unstable", "noisy_validation", "underfitting"}
_DEAD_RATE_SYMPTOMS = {"plateau", "underfitting", "slow_convergence", "still_improving", "stalled",
                       "val_better_than_train"}
_SLOW_SYMPTOMS = {"still_improving", "underfitting", "slow_convergence", "plateau",
                  "val_better_than_train", "noisy_validation"}


def explain(found: list[Finding], f: RunFeatures, th: dict, notes: list[Finding] = ()) -> list[Finding]:
    """Returns ``found`` with the root cause's finding first and its symptoms folded in.

    Args:
        found: Problem findings, sorted by severity and confidence.
        f: The run's features (its curves, recipe and data facts).
        th: Advisor thresholds.
        notes: "info" findings (observations judged not worth acting on); a cause may
            promote one to a problem (extreme dropout behind validation-better-than-train).

    Returns:
        The findings to report, most important first; a finding judged not worth acting
        on comes back as an "info" note (``is_problem`` False).
    """
    ctx = RunContext.from_features(f)
    promoted = _starved_by_dropout(notes, ctx)
    if promoted is not None:
        found = [*found, promoted]
    for cause in (_clipping, _learning_rate, _schedule, _weight_decay, _chance, _cut_short, _few_updates, _handicap,
                  _capacity):
        lead = cause(found, f, ctx, th)
        if lead is not None:
            return _fold(lead, found)
    imbalance = _first(found, {"class_imbalance"})
    if imbalance is not None:
        return [imbalance] + [x for x in found if x is not imbalance]
    stuck = _first(found, {"stalled"})
    if stuck is not None and stuck.actions:
        # Nothing is learned and nothing in the recipe says why: a loss wobbling about
        # its constant, noise around a constant validation and a training loss that
        # stays high are what "not learning" looks like, not separate problems.
        return _fold((stuck, stuck.actions[0], _STUCK_SYMPTOMS), found)
    crawling = _first(found, {"slow_convergence"})
    if crawling is not None and crawling.evidence.get("learning_rate") and crawling.actions:
        return _fold((crawling, crawling.actions[0], _SLOW_SYMPTOMS), found)
    unfinished = _first(found, {"still_improving"})
    if unfinished is not None and unfinished.actions:
        # A run stopped while validation still clearly improves has not shown what its
        # regularisation costs: validation ahead of training and a high training loss are
        # what any regularised model looks like mid-training, so "train longer" leads.
        return _fold((unfinished, unfinished.actions[0], _UNFINISHED_SYMPTOMS), found)
    return _reading_noise(found, f, ctx, th)


def _reading_noise(found: list[Finding], f: RunFeatures, ctx: RunContext, th: dict) -> list[Finding]:
    """Noisy validation on a run with nothing else wrong, as a note.

    When the recipe's learning rate is in its optimizer's usual range, no other rule
    fires and the error left is negligible (`near_perfect`: below ``near_perfect`` of
    chance error), the zig-zag is a small validation set reading a healthy model unsteadily.
    Every remedy changes what is trained — a larger validation split takes training
    images, a larger batch or a smaller rate change the optimisation — and each cost a
    healthy run about half a point to a point of test accuracy over 12 seeds
    (``benchmarks/noisy_validation_actions.py``), so the advice is to change nothing.
    """
    if (len(found) != 1 or found[0].rule != "noisy_validation" or not ctx.learning_rate_in_range()
            or near_perfect(f, th) is None):
        return found
    note = found[0]
    images = f"{ctx.val_size} validation images" if ctx.val_size else "the validation set"
    note.severity, note.actions = "info", []
    note.summary += (f", and nothing else is wrong (the error left is small; learning rate "
                     f"{ctx.learning_rate:g} is in {ctx.optimizer}'s usual range): {images} read a healthy run unsteadily, so "
                     "nothing in training needs to change; a larger data.val_fraction would steady "
                     "the reading but trains on fewer images")
    note.evidence["learning_rate"] = ctx.learning_rate
    if ctx.val_size:
        note.evidence["validation_images"] = ctx.val_size
    return [note]


def _first(found: list[Finding], rules: set[str]) -> Finding | None:
    return next((x for x in found if x.rule in rules), None)


def _fold(lead: tuple[Finding, Action, set[str]], found: list[Finding]) -> list[Finding]:
    """Puts ``finding`` first with ``action`` first; folds the ``symptoms`` it explains."""
    finding, action, symptoms = lead
    folded = [x for x in found if x is not finding and x.rule in symptoms]
    if folded:
        finding.evidence["explains"] = [x.rule for x in folded]
        finding.summary += f" (this also explains: {', '.join(x.rule for x in folded)})"
    finding.actions = [action] + [a for a in finding.actions if a.patch.keys() != action.patch.keys()]
    rest = [x for x in found if x is not finding and x not in folded]
    return [finding] + rest


def _stuck(found: list[Finding], f: RunFeatures, ctx: RunContext) -> Finding | None:
    """The finding saying nothing is learned: stalled/diverged, or a new `stalled`
    when the run sits at chance level although no curve rule said so."""
    lead = _first(found, {"diverged", "stalled"})
    if lead is not None or not ctx.at_chance(f):
        return lead
    chance = f"chance-level loss {ctx.chance_loss:.3g}" if ctx.chance_loss else "chance level"
    return Finding("stalled", "error", 0.9,
                   f"training ended at {chance} ({ctx.classes or '?'} classes): the model learned nothing",
                   {"chance_loss": ctx.chance_loss, "chance_accuracy": ctx.chance_accuracy}, [])


def _learning_rate(found, f, ctx, th):
    verdict = ctx.learning_rate_verdict()
    if verdict is None:
        return None
    side, times = verdict
    usual = ctx.usual_learning_rate()
    logged = " (logged)" if ctx.lr_from_log else ""
    where = (f"{ctx.learning_rate:g}{logged} is {times:.0f}× {'above' if side == 'high' else 'below'} the "
             f"usual range of {ctx.optimizer_words()}")
    if side == "high":
        lead = _stuck(found, f, ctx) or _first(found, {"unstable", "noisy_validation", "plateau"})
        if lead is None:
            return None
        # Just above the range, a tenth; far above it, or for an optimizer a bare log does not
        # name, the first choice of the range.
        new = usual if times >= 10 or ctx.optimizer is None else max(usual, ctx.learning_rate / 10)
        why = f"the learning rate {where}: steps that large overshoot every minimum"
    else:
        lead = _stuck(found, f, ctx) or _first(found, _SLOW_SYMPTOMS)
        if lead is None:
            return None
        new = usual
        why = f"the learning rate {where}: each step is too small to get anywhere"
    lead.evidence["learning_rate"] = {"value": ctx.learning_rate, "optimizer": ctx.optimizer,
                                      "from_log": ctx.lr_from_log,
                                      "usual": usual, "times_outside": times, "side": side}
    return lead, Action({"optimizer.learning_rate": float(f"{new:.3g}")}, why), _OPTIMISATION_SYMPTOMS


def _not_diverged(lead: Finding | None) -> Finding | None:
    """``lead`` unless it is a diverged loss: a run that blew up needs its steps made
    smaller first, whatever else its recipe does (a looser clip would make it worse)."""
    return None if lead is None or lead.rule == "diverged" else lead


def _dead_rate_lead(found, f, ctx) -> Finding | None:
    """The finding that shows steps too small to move the weights (stuck, or validation
    no longer moving while training stays high), never a diverged one."""
    return _not_diverged(_stuck(found, f, ctx) or _first(found, _DEAD_RATE_SYMPTOMS))


def _schedule(found, f, ctx, th):
    cut = ctx.rate_cut_early(f)
    if cut is None:
        return None
    at, rate = cut
    lead = _dead_rate_lead(found, f, ctx)
    if lead is None:
        return None
    schedule = get_path(f.run.recipe, "schedule.name")
    lead.evidence["schedule_cut"] = {"epoch": f.epoch_label(at), "learning_rate": rate}
    why = (f"the {schedule} schedule cut the learning rate to {rate:.2g} by epoch {f.epoch_label(at)}, "
           f"below a tenth of the low end of {ctx.optimizer_words()}'s usual range, in the first half of the run: "
           "the epochs after it could hardly move the weights; cosine decays over the whole run")
    return lead, Action({"schedule.name": "cosine"}, why), _DEAD_RATE_SYMPTOMS


def _clipping(found, f, ctx, th):
    if ctx.optimizer != "sgd" or not 0 < ctx.clipnorm < TINY_CLIPNORM:
        return None
    lead = _dead_rate_lead(found, f, ctx)
    if lead is None:
        return None
    lead.evidence["clipnorm"] = ctx.clipnorm
    why = (f"clipnorm {ctx.clipnorm:g} caps every SGD step at learning rate × {ctx.clipnorm:g}: far too "
           f"small to learn (gradients are usually clipped at 0.1-10)")
    patch = {"optimizer.clipnorm": USUAL_CLIPNORM}
    if ctx.learning_rate_verdict() is not None:  # the clip hid a rate outside the range: fix both
        patch["optimizer.learning_rate"] = ctx.usual_learning_rate()
        why += f", and the learning rate {ctx.learning_rate:g} is outside SGD's usual range"
    return lead, Action(patch, why), _DEAD_RATE_SYMPTOMS | _STUCK_SYMPTOMS


def _weight_decay(found, f, ctx, th):
    shrink = ctx.decay_per_epoch()
    if shrink is None or shrink < CRUSHING_DECAY:
        return None
    lead = _stuck(found, f, ctx) or _first(found, {"underfitting", "val_better_than_train", "plateau"})
    if lead is None:
        return None
    lead.evidence["weight_decay_per_epoch"] = shrink
    why = (f"weight decay {ctx.weight_decay:g} × learning rate × {ctx.steps_per_epoch} updates shrinks the "
           f"weights by {100 * min(shrink, 1):.0f}% per epoch: it erases what training learns")
    return lead, Action({"optimizer.weight_decay": 1e-4}, why), _OPTIMISATION_SYMPTOMS


def _chance(found, f, ctx, th):
    lead = _stuck(found, f, ctx)
    if lead is None or lead.rule == "diverged":
        return None
    if ctx.dropout >= HEAVY_DROPOUT:
        return lead, Action({"model.dropout": 0.2}, f"dropout {ctx.dropout:g} drops almost every "
                            "feature the classifier sees"), _OPTIMISATION_SYMPTOMS
    if ctx.width is not None and ctx.width <= SMALL_WIDTH and str(ctx.backbone).startswith("small_"):
        return lead, _wider(ctx), _OPTIMISATION_SYMPTOMS
    return None  # the rule's own advice: check data, labels and loss


def _starved_by_dropout(notes, ctx: RunContext) -> Finding | None:
    """The ``val_better_than_train`` note as a warning when dropout is extreme."""
    note = _first(list(notes), {"val_better_than_train"})
    if note is None or ctx.dropout < EXTREME_DROPOUT:
        return None
    note.severity = "warning"
    note.summary = (note.summary.split(" (expected")[0] + f": dropout {ctx.dropout:g}, far above the "
                    "usual 0.1-0.5, trains the model on a fraction of its features")
    return note


def _cut_short(found, f, ctx, th):
    if ctx.epochs_planned is None or f.loss is None:
        return None
    stopped_early = 0 < ctx.early_stopping <= 2 and ctx.epochs_run < ctx.epochs_planned
    # Early stopping fires only after epochs without improvement of its monitor, so for
    # a stopped run "still improving" is read on the training loss across the patience.
    improving = (f.improving_curve(th) is not None or _still_falling(f)
                 or (stopped_early and _fell_over(f, ctx.early_stopping + 1)))
    if not improving:
        return None
    if stopped_early:
        lead = _first(found, {"still_improving"}) or _new_still_improving(
            f, f"early stopping with a patience of {ctx.early_stopping} ended training at epoch "
               f"{ctx.epochs_run} of {ctx.epochs_planned} while it was still improving")
        return lead, Action({"train.early_stopping": 10}, "a patience of 1-2 epochs stops at the first "
                            "noisy epoch; 10 waits out the noise"), _SLOW_SYMPTOMS
    if ctx.epochs_run < th["min_epochs"] and ctx.epochs_run >= ctx.epochs_planned:
        lead = _first(found, {"still_improving"}) or _new_still_improving(
            f, f"only {ctx.epochs_run} epochs, and the loss was still falling fast at the end")
        epochs = max(4 * ctx.epochs_planned, 10 * th["min_epochs"] // 4)
        return lead, Action({"train.epochs": epochs}, "training was cut short long before "
                            "convergence"), _SLOW_SYMPTOMS
    return None


def _few_updates(found, f, ctx, th):
    steps = ctx.steps_per_epoch
    if steps is None or steps > FEW_UPDATES or not ctx.batch_size or ctx.batch_size <= 32:
        return None
    lead = _stuck(found, f, ctx) or _first(found, _SLOW_SYMPTOMS)
    if lead is None:
        return None
    why = (f"batch {ctx.batch_size} on {ctx.train_size} training images is {steps} optimizer update(s) per "
           f"epoch, {steps * (ctx.epochs_planned or ctx.epochs_run)} in the whole run: far too few")
    return lead, Action({"train.batch_size": 32}, why), _SLOW_SYMPTOMS | {"stalled"}


def _handicap(found, f, ctx, th):
    """Augmentation or label smoothing far beyond the usual behind a model that cannot
    fit its training set: they make training harder by design, and past these levels
    the training images (or targets) no longer show the class."""
    extreme = ctx.extreme_augmentation()
    if not extreme and ctx.label_smoothing < HEAVY_LABEL_SMOOTHING:
        return None
    lead = _not_diverged(_stuck(found, f, ctx) or _first(found, {"underfitting", "val_better_than_train"})
                         or _half_learned(f, ctx))
    if lead is None:
        return None
    if extreme:
        lead.evidence["augmentation"] = {path: value for path, (value, _) in extreme.items()}
        words = ", ".join(f"{path.rsplit('.', 1)[1]} {value:g}" for path, (value, _) in extreme.items())
        return lead, Action({path: usual for path, (_, usual) in extreme.items()},
                            f"augmentation far beyond the usual ({words}) changes what the training "
                            "images show: the model cannot fit them"), _SLOW_SYMPTOMS | {"stalled"}
    floor = ctx.label_smoothing_floor()
    lead.evidence["label_smoothing"] = {"value": ctx.label_smoothing, "loss_floor": floor}
    at = f" (its training loss cannot go below {floor:.3g})" if floor else ""
    return lead, Action({"loss.label_smoothing": USUAL_LABEL_SMOOTHING},
                        f"label smoothing {ctx.label_smoothing:g}, far above the usual "
                        f"{USUAL_LABEL_SMOOTHING:g}, flattens the targets towards uniform{at}"), \
        _SLOW_SYMPTOMS | {"stalled"}


def _half_learned(f: RunFeatures, ctx: RunContext) -> Finding | None:
    """A new `underfitting` finding when the training accuracy ended with more than half
    of chance-level error left (a loss that fell a quarter or more can hide it: the
    underfitting rule reads the loss)."""
    if not (f.bounded and f.metric and "acc" in f.metric and f.train_err is not None and ctx.chance_accuracy):
        return None
    last = C.finite(f.train_err)[-max(2, min(5, f.n // 5)):]
    chance_error = 1.0 - ctx.chance_accuracy
    if not last.size or float(np.median(last)) < 0.5 * chance_error:
        return None
    accuracy = 1.0 - float(np.median(last))
    return Finding("underfitting", "warning", 0.8,
                   f"training {f.metric} ended at {accuracy:.2f} (chance {ctx.chance_accuracy:.2f}): the model "
                   "has not learned half of its training set", {"train_accuracy": accuracy}, [])


def _capacity(found, f, ctx, th):
    handicapped = _first(found, {"underfitting", "val_better_than_train"})
    if ctx.dropout >= HEAVY_DROPOUT and handicapped is not None:
        return handicapped, Action({"model.dropout": 0.2}, f"dropout {ctx.dropout:g} handicaps training: "
                                   "the model cannot fit what it never sees"), _SLOW_SYMPTOMS
    lead = _first(found, {"underfitting", "val_better_than_train", "plateau", "still_improving"})
    if lead is None:
        return None
    if ctx.width is not None and ctx.width <= SMALL_WIDTH and str(ctx.backbone).startswith("small_"):
        return lead, _wider(ctx), _SLOW_SYMPTOMS
    return None


def _wider(ctx: RunContext) -> Action:
    return Action({"model.width": 16}, f"a CNN {ctx.width} filter(s) wide has too little capacity "
                  "to fit the training set")


def _still_falling(f: RunFeatures) -> bool:
    """The training loss fell by more than 5 % of itself over the last epoch."""
    x = [v for v in f.loss if v == v]
    return len(x) >= 2 and x[-1] < x[-2] and (x[-2] - x[-1]) > 0.05 * abs(x[-2])


def _fell_over(f: RunFeatures, epochs: int) -> bool:
    """The training loss is lower at the end than ``epochs`` epochs before."""
    x = [v for v in f.loss if v == v]
    return len(x) > epochs and x[-1] < x[-1 - epochs]


def _new_still_improving(f: RunFeatures, summary: str) -> Finding:
    return Finding("still_improving", "warning", 0.8, summary, {"epochs": f.n}, [])
