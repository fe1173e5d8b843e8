"""The learning-to-trust protocol, read top to bottom: teacher pass → trust fit → scoring → selection → report.

``run_protocol`` is the only place these steps are sequenced; ``fit``, ``compare``, ``chain`` and the Python API
all call it, and the student's data module only serves the subset it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trust_functions.base import TrustFunction
from w2s import metrics
from w2s.errors import W2SError
from w2s.outputs import TeacherOutputs
from w2s.selection import Selection
from w2s.tasks.base import Task
from w2s.teacher import Teacher


@dataclass
class TrustedSubset:
    """What the protocol hands the student, and how it was chosen.

    Attributes:
        examples: the target examples the student trains on, most trusted first.
        labels: the label each of them is trained on (its weak label, or its gold one for the ceiling).
        indices: ``[n]`` their positions in the target split.
        scores: ``[N]`` the trust score of every target example.
        correct: ``[N]`` whether each weak label is right: evaluation only, it never selects anything.
        report: the teacher, trust and selection sections of ``results.json``.
        trust: the fitted trust function.
        target: the teacher's pass over the target split (ids, weak labels; its correctness is evaluation only).
        questions: ``[N]`` each target example's prompt, for the per-example export (``trust_scores.parquet``).
    """

    examples: list[dict]
    labels: list[str]
    indices: torch.Tensor
    scores: torch.Tensor
    correct: torch.Tensor
    report: dict[str, Any]
    trust: TrustFunction
    target: TeacherOutputs
    questions: list[str]

    def trust_scores(self) -> pyarrow.Table:  # noqa: F821 (pyarrow is imported where the table is built)
        """The per-example table of ``trust_scores.parquet`` (``w2s.trust_scores.trust_scores_table``)."""
        from w2s.trust_scores import trust_scores_table

        return trust_scores_table(self.target.ids, self.questions, self.target.weak_labels, self.scores,
                                  self.indices, self.correct)


def run_protocol(task: Task, teacher: Teacher, trust: TrustFunction, selection: Selection) -> TrustedSubset:
    """Label the source and target sets with the teacher, fit ``trust`` on the source set, score the target set
    without its correctness and select the weak labels the student will learn from."""
    splits = task.load()
    teacher = teacher.with_features(trust.teacher_features())
    outputs = teacher.label(task, {"source": splits["source"], "target": splits["target"]})
    source, target = outputs["source"], outputs["target"]

    trust.prepare(teacher, task, splits)
    guarantee = selection.calibrated and not trust.keep_all
    fitted, calibration = calibration_split(source, selection.calibration_fraction) if guarantee else (source, None)
    trust.fit(fitted)
    scores = checked_scores(trust, target.without_labels())

    if trust.keep_all:
        chosen = torch.arange(len(target))
    elif guarantee:
        cal_scores = checked_scores(trust, calibration.without_labels())
        chosen, guaranteed = selection.with_guarantee(scores, cal_scores.numpy(), np.asarray(calibration.correct))
    else:
        chosen = selection(scores)
    if len(chosen) == 0:
        raise W2SError(f"the selection kept no target example (mode {selection.mode}); " + (
            "lower selection.purity or raise selection.delta" if selection.calibrated
            else "lower selection.threshold or use mode fraction"))
    examples = [splits["target"][int(i)] for i in chosen]
    labels = ([task.gold(ex) for ex in examples] if trust.uses_gold_labels
              else [target.weak_labels[int(i)] for i in chosen])
    keep = [k for k, label in enumerate(labels) if label is not None]  # an unparsed weak label teaches nothing
    if not keep:
        raise W2SError(f"none of the {len(chosen)} selected weak labels could be parsed from the teacher's "
                       "generations, so the student would train on nothing; raise data.teacher.max_new_tokens "
                       "or fix the task's answer format (answer_pattern)")

    correct = torch.as_tensor(np.asarray(target.correct))
    report = protocol_report(source, target, trust, selection, scores, correct, chosen)
    report["selection"]["skipped_unparsed"] = len(chosen) - len(keep)
    if guarantee:  # the realised target purity (evaluation only) beside what was guaranteed
        report["selection"].update(guaranteed, realised_target_purity=float(correct[chosen].float().mean()))
    return TrustedSubset([examples[k] for k in keep], [labels[k] for k in keep], chosen[keep], scores, correct,
                         report, trust, target, [task.prompt(ex) for ex in splits["target"]])


def calibration_split(source: TeacherOutputs, fraction: float) -> tuple[TeacherOutputs, TeacherOutputs]:
    """The source set cut into the part a trust function is fitted on and a held-out calibration part, stratified
    by correctness so that both keep the teacher's accuracy (seeded by the run's seed)."""
    correct = np.asarray(source.correct, dtype=bool)
    rng = np.random.default_rng(torch.initial_seed())
    held = np.concatenate([rng.permutation(np.flatnonzero(correct == c))[: round(fraction * (correct == c).sum())]
                           for c in (True, False)])
    rest = np.setdiff1d(np.arange(len(source)), held)
    return source.subset(rest), source.subset(np.sort(held))


def checked_scores(trust: TrustFunction, target: TeacherOutputs) -> torch.Tensor:
    """``trust``'s scores of ``target`` as a ``[N]`` float tensor, refused when non-finite or of another shape."""
    scores = torch.as_tensor(trust.score(target), dtype=torch.float32).flatten()
    if scores.shape != (len(target),) or not torch.isfinite(scores).all():
        raise W2SError(f"{trust.name}.score returned {tuple(scores.shape)} scores (non-finite or wrong shape) for "
                       f"{len(target)} target examples")
    return scores


def protocol_report(source: TeacherOutputs, target: TeacherOutputs, trust: TrustFunction, selection: Selection,
                    scores: torch.Tensor, correct: torch.Tensor, chosen: torch.Tensor) -> dict[str, Any]:
    """The teacher, trust and selection sections of ``results.json`` (target correctness evaluates, never selects)."""
    return {
        "teacher": {"accuracy": {"source": source.accuracy, "target": target.accuracy},
                    "unparsed": {"source": source.n_unparsed, "target": target.n_unparsed}},
        "trust": {"name": trust.name, "ranks": not trust.keep_all, **metrics.trust_metrics(scores, correct),
                  "purity": metrics.purity_at_n(scores, correct, len(chosen)),  # chosen: the n most trusted
                  "source_val": dict(trust.source_val)},
        "selection": {"n": len(chosen), "mode": "all" if trust.keep_all else selection.mode,
                      "labels": "gold" if trust.uses_gold_labels else "weak"},
    }
