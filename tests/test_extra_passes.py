"""Trust functions that run the teacher again (P(True), sampling agreement), and teacher outputs from outside."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import error_message, run_cli, run_main, tiny_args
from w2s.errors import W2SError


@pytest.fixture(scope="module")
def tiny(tiny_world):
    from w2s.tasks import LocalMultipleChoice
    from w2s.teacher import Teacher

    task = LocalMultipleChoice(str(tiny_world / "data"))
    return task, task.load(), Teacher(str(tiny_world / "teacher"), batch_size=32)


def test_p_true_is_the_teachers_probability_of_true_after_its_own_answer(tiny, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trust_functions import PTrue

    task, splits, teacher = tiny
    trust = PTrue()
    trust.prepare(teacher, task, splits)
    target = teacher.label(task, {"target": splits["target"]})["target"]
    scores = trust.score(target.without_labels())
    assert scores.shape == (len(target),) and ((scores > 0) & (scores < 1)).all() and scores.unique().numel() > 1
    # the known value, by a direct forward: softmax over the summed log-likelihoods of " True" and " False"
    model = AutoModelForCausalLM.from_pretrained(teacher.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(teacher.model)
    for i in (0, 7):
        example = splits["target"][i]
        prompt = task.prompt(example) + target.generations[i] + trust.question
        totals = []
        for option in (trust.true, trust.false):
            p, o = tokenizer(prompt).input_ids, tokenizer(option, add_special_tokens=False).input_ids
            with torch.no_grad():
                logprobs = model(torch.tensor([p + o])).logits[0].log_softmax(-1)
            totals.append(sum(float(logprobs[len(p) - 1 + j, t]) for j, t in enumerate(o)))
        assert float(scores[i]) == pytest.approx(float(torch.tensor(totals).softmax(0)[0]), abs=1e-4)
    permuted = replace(target, correct=np.random.default_rng(2).permutation(target.correct))
    assert torch.equal(trust.score(permuted), scores)  # no use of target gold
    # cached: a second P(True) reads its pass back; the calibration part of the source is scored too
    monkeypatch.setattr("w2s.teacher.load_causal_lm", lambda *a, **k: pytest.fail("P(True) pass not cached"))
    again = PTrue()
    again.prepare(teacher, task, splits)
    assert torch.equal(again.score(target), scores)
    source = teacher.label(task, {"source": splits["source"]})["source"]
    assert again.score(source.subset([3, 1])).shape == (2,)
    with pytest.raises(W2SError, match="PTrue has no P\\(True\\) pass for 1 of these examples"):
        PTrue().score(source.subset([0]))
    # the toy tokenizer knows neither word: the two continuations would be the same unknown token
    with pytest.raises(W2SError, match="the continuations ' True' and ' False' are the same tokens"):
        PTrue(true=" True", false=" False").prepare(teacher, task, splits)


def test_sampling_agreement_is_the_share_of_samples_agreeing_with_the_weak_label(tiny):
    from trust_functions import InternalConfidence, SamplingAgreement

    task, splits, teacher = tiny
    target = teacher.label(task, {"target": splits["target"]})["target"]
    greedy = SamplingAgreement(k=2, temperature=1e-4)  # (almost) greedy: every sample is the weak label
    greedy.prepare(teacher, task, splits)
    parsed = np.array([w is not None for w in target.weak_labels])
    assert greedy.score(target).numpy()[parsed].min() == 1.0
    sampled = SamplingAgreement(k=48, temperature=1.0, seed=3)
    sampled.prepare(teacher, task, splits)
    scores = sampled.score(target.without_labels())
    assert set((scores * 48).round().tolist()) <= set(range(49)) and scores.unique().numel() > 3
    # at temperature 1 the share of samples giving the weak label estimates its probability, I-Confidence (this
    # teacher puts its mass on the letters); over sampling seeds 0-5 the means differ by 0.001-0.010
    confidence = InternalConfidence().score(target)
    assert abs(float(scores.mean() - confidence.mean())) < 0.03
    again = SamplingAgreement(k=48, temperature=1.0, seed=3)
    again.prepare(teacher, task, splits)
    assert torch.equal(again.score(target), scores)  # the same settings read the same cached samples
    permuted = replace(target, correct=np.random.default_rng(2).permutation(target.correct))
    assert torch.equal(sampled.score(permuted), scores)  # no use of target gold


def test_sampling_needs_a_generating_teacher(tiny_world, tiny):
    from trust_functions import SamplingAgreement
    from w2s.tasks import LocalMultipleChoice

    _, splits, teacher = tiny
    task = LocalMultipleChoice(str(tiny_world / "data"), interface="likelihood")
    with pytest.raises(W2SError, match="sampled generations need a task the teacher answers by generating"):
        SamplingAgreement().prepare(teacher, task, splits)


def test_an_exported_pass_read_back_as_outside_outputs_gives_the_same_run(tiny_world, tmp_path):
    """Round trip: export the teacher pass (python -m w2s.label --export), fit once from the model and once from
    the exported files: the same results.json."""
    import subprocess
    import sys

    from conftest import ROOT

    args = tiny_args(tiny_world)[1:]  # without "fit" (configs/toy.yaml: the NTF reads 0:prompt_mean)
    proc = subprocess.run([sys.executable, "-m", "w2s.label", *args, "--export", str(tmp_path / "outside")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in (tmp_path / "outside").iterdir()} == {
        "source.jsonl", "source.hidden.npy", "source.0_prompt_mean.npy",
        "target.jsonl", "target.hidden.npy", "target.0_prompt_mean.npy"}
    runs = {}
    for name, extra in (("model", []), ("outside", ["--data.teacher.outputs_dir", str(tmp_path / "outside"),
                                                     "--data.teacher.model", "no/such-model-needed"])):
        out = tmp_path / name
        proc = run_cli(*tiny_args(tiny_world, *extra,
                                  "--seed_everything", "0", "--trainer.logger.init_args.save_dir", str(out)),
                       cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads(next(out.rglob("results.json")).read_text())
    assert runs["outside"] == runs["model"]


def _export(tiny_world, tmp_path):
    from w2s.outside import export_outputs
    from w2s.tasks import LocalMultipleChoice
    from w2s.teacher import Teacher

    task = LocalMultipleChoice(str(tiny_world / "data"))
    splits = task.load()
    outputs = Teacher(str(tiny_world / "teacher"), batch_size=32).label(task, {"source": splits["source"]})
    export_outputs(outputs["source"], tmp_path, "source")
    return task, splits


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "source.jsonl").write_text("\n".join((d / "source.jsonl").read_text().splitlines()[1:])),
     "source.jsonl lacks 1 of the .* source ids"),
    (lambda d: np.save(d / "source.hidden.npy", np.load(d / "source.hidden.npy")[:-1]),
     "source.hidden.npy has shape .* but its .jsonl has .* lines: it needs one row per line"),
    (lambda d: (d / "source.jsonl").write_text("{not json\n"), "line 1 of .*source.jsonl is not a JSON object"),
    (lambda d: (d / "source.hidden.npy").unlink(), "source.hidden.npy does not exist"),
])
def test_damaged_outside_outputs_are_one_line(tiny_world, tmp_path, damage, message):
    from w2s.outside import read_outside

    task, splits = _export(tiny_world, tmp_path)
    damage(tmp_path)
    with pytest.raises(W2SError, match=message):
        read_outside(tmp_path, "source", task, splits["source"], [])


def test_a_feature_missing_from_outside_outputs_is_one_line(tiny_world, tmp_path):
    _export(tiny_world, tmp_path)  # the source pass without the NTF's feature 0:prompt_mean
    proc = run_main(*tiny_args(tiny_world, "--data.teacher.outputs_dir", str(tmp_path)), cwd=tmp_path)
    assert proc.returncode == 2
    assert "source.0_prompt_mean.npy does not exist (feature 0:prompt_mean)" in error_message(proc.stderr)
