"""The likelihood (cloze) interface: options scored as continuations, against a plain forward of the model."""

import datasets
import numpy as np
import pytest
import torch

from hub_fixtures import save_tiny_lm
from w2s.tasks import LocalMultipleChoice
from w2s.teacher import Teacher

QUESTIONS = [{"id": str(i), "question": f"which colour is item {i}", "choices": choices,
              "answer": "ABCD"[i % len(choices)]}
             for i, choices in enumerate([["red", "green", "blue", "yellow"], ["a cat", "a dog", "a bird"]] * 6)]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("likelihood")
    datasets.DatasetDict({name: datasets.Dataset.from_list(QUESTIONS) for name in ("source", "target", "test")}
                         ).save_to_disk(root / "data")
    texts = [f"Question: {q['question']}\nAnswer: {c}" for q in QUESTIONS for c in q["choices"]]
    return root, save_tiny_lm(root / "lm", "qwen3", texts)


@torch.no_grad()
def plain_scores(model, tokenizer, prompt: str, options: list[str]) -> tuple[list[float], list[torch.Tensor]]:
    """Each option's summed log-likelihood after the prompt, and every layer's states of its sequence, from the
    model's own forward (all logits)."""
    prompt_ids = tokenizer(prompt).input_ids
    scores, states = [], []
    for option in options:
        ids = prompt_ids + tokenizer(option, add_special_tokens=False).input_ids
        out = model(torch.tensor([ids]), output_hidden_states=True)
        logp = out.logits[0, :-1].float().log_softmax(-1)
        scores.append(float(sum(logp[t - 1, ids[t]] for t in range(len(prompt_ids), len(ids)))))
        states.append(torch.stack([h[0] for h in out.hidden_states]))  # [layers, T, d]
    return scores, states


@pytest.mark.parametrize("share_prompt", [True, False])
@pytest.mark.parametrize("position,offset", [("appended", 0), ("produced", 1)])
def test_the_weak_label_is_the_most_likely_option_and_its_state_is_read_where_it_ends(setting, position, offset,
                                                                                     share_prompt):
    from w2s.models import load_causal_lm, load_tokenizer

    root, lm = setting
    task = LocalMultipleChoice(str(root / "data"), interface="likelihood")
    teacher = Teacher(str(lm), batch_size=5, position=position, dtype="float32", share_prompt=share_prompt,
                      features=["1:produced", "0:prompt_mean", "2:prompt_last"])
    model, tokenizer = load_causal_lm(str(lm), "float32"), load_tokenizer(str(lm))
    split = task.load()["target"]
    out = teacher.run(model, tokenizer, task, split)
    for i, example in enumerate(split):
        options = [f" {c}" for c in example["choices"]]
        scores, states = plain_scores(model, tokenizer, task.prompt(example), options)
        best = int(np.argmax(scores))
        assert out.weak_labels[i] == "ABCD"[best] and out.generations[i] == options[best]
        np.testing.assert_allclose(out.option_logprobs[i][: len(options)], scores, atol=1e-4)
        assert np.isneginf(out.option_logprobs[i][len(options):]).all()  # options the question does not offer
        end = states[best].shape[1] - 1 - offset  # the chosen option's final token (appended) or the one before
        np.testing.assert_allclose(out.hidden[i], states[best][-1, end], atol=1e-4)
        np.testing.assert_allclose(out.features["1:produced"][i], states[best][1, end], atol=1e-4)
        prompt_len = len(tokenizer(task.prompt(example)).input_ids)
        np.testing.assert_allclose(out.features["0:prompt_mean"][i], states[best][0, :prompt_len].mean(0), atol=1e-4)
        np.testing.assert_allclose(out.features["2:prompt_last"][i], states[best][2, prompt_len - 1], atol=1e-4)
        assert out.correct[i] == (out.weak_labels[i] == example["answer"])


def test_options_are_compared_per_character_when_asked(setting):
    root, lm = setting
    task = LocalMultipleChoice(str(root / "data"), interface="likelihood", normalize="chars")
    from w2s.models import load_causal_lm, load_tokenizer

    model, tokenizer = load_causal_lm(str(lm), "float32"), load_tokenizer(str(lm))
    split = task.load()["target"]
    out = Teacher(str(lm), batch_size=4).run(model, tokenizer, task, split)
    for i, example in enumerate(split):
        options = [f" {c}" for c in example["choices"]]
        scores, _ = plain_scores(model, tokenizer, task.prompt(example), options)
        per_char = [s / len(o) for s, o in zip(scores, options)]
        assert out.weak_labels[i] == "ABCD"[int(np.argmax(per_char))]


def test_the_student_is_trained_on_the_option_text_and_evaluated_by_likelihood(setting):
    """A student's likelihood accuracy equals the share of questions whose gold option is its most likely one."""
    from types import SimpleNamespace

    from students import LoRASFTStudent
    from w2s.data import W2SDataModule
    from w2s.models import load_tokenizer

    root, lm = setting
    task = LocalMultipleChoice(str(root / "data"), interface="likelihood")
    assert task.completion("B", QUESTIONS[1]) == " a dog" and task.option_token_ids(None, QUESTIONS[0]) is None
    student = LoRASFTStudent(str(lm))
    subset = SimpleNamespace(examples=QUESTIONS[:2], labels=["A", "B"])
    data = W2SDataModule(task, teacher=None, eval_batch_size=7).connect(student, subset)
    data.setup("fit")
    train = next(iter(data.train_dataloader()))
    tokenizer = load_tokenizer(str(lm))
    answers = sorted(tokenizer.decode(ids[labels != -100]) for ids, labels in zip(train["input_ids"],
                                                                                    train["labels"]))
    assert answers == [" a dog", " red"]
    student.trainer = SimpleNamespace(datamodule=data)
    correct = torch.cat([student._accuracy(batch) for batch in data.val_dataloader()])
    model = student.model
    expected = {}  # prompt token ids → whether the gold option is the most likely (rows are evaluated by length)
    for example in task.load()["test"]:
        scores, _ = plain_scores(model, tokenizer, task.prompt(example), [f" {c}" for c in example["choices"]])
        expected[tuple(tokenizer(task.prompt(example)).input_ids)] = float(
            int(np.argmax(scores)) == "ABCD".index(example["answer"]))
    assert correct.tolist() == [expected[tuple(row["prompt_ids"])] for row in data.evaluation_rows()]


def test_the_student_loss_is_the_models_own_cross_entropy_and_letter_logits_match(setting):
    """The output layer runs only where answers are scored; the loss and the option logits equal the model's own
    (every position's logits, HF's shifted cross-entropy)."""
    from w2s.batching import option_batch, sft_batch
    from w2s.models import load_causal_lm, load_tokenizer
    from w2s.scoring import logits_at, score_continuations

    _, lm = setting
    model, tokenizer = load_causal_lm(str(lm), "float32"), load_tokenizer(str(lm))
    rows = [{"prompt_ids": tokenizer(q["question"]).input_ids,
             "answer_ids": tokenizer(" " + q["choices"][0], add_special_tokens=False).input_ids} for q in QUESTIONS[:5]]
    batch = sft_batch(rows, tokenizer.pad_token_id)
    with torch.no_grad():
        expected = model(**batch).loss
        scored = batch["labels"] != -100
        ours = -score_continuations(model, batch["input_ids"], batch["attention_mask"], scored).logprobs.sum()
    assert torch.allclose(ours / scored[:, 1:].sum(), expected, atol=1e-5)
    options = option_batch([{"prompt_ids": r["prompt_ids"], "option_ids": [5, 6, 7], "gold": 0, "group": 0}
                            for r in rows], tokenizer.pad_token_id)
    with torch.no_grad():
        full = model(input_ids=options["input_ids"], attention_mask=options["attention_mask"]).logits
        last = logits_at(model, options["input_ids"], options["attention_mask"], options["last"])
    assert torch.allclose(last, full[torch.arange(5), options["last"]], atol=1e-5)


def test_a_student_may_answer_by_letter_while_the_teacher_answers_by_likelihood(setting):
    """student_interface: the teacher scores option texts, the student is trained on and evaluated by letters; the
    labels are letters either way."""
    from types import SimpleNamespace

    from w2s.batching import sft_batch
    from w2s.data import W2SDataModule
    from w2s.models import load_tokenizer

    root, lm = setting
    task = LocalMultipleChoice(str(root / "data"), interface="likelihood", student_interface="letters")
    student_task = task.for_student()
    assert task.option_texts(QUESTIONS[0]) is not None and student_task.option_texts(QUESTIONS[0]) is None
    assert task.prompt(QUESTIONS[0]).startswith("Question: ") and "\nA. red\n" in student_task.prompt(QUESTIONS[0])
    tokenizer = load_tokenizer(str(lm))
    student = SimpleNamespace(tokenizer=tokenizer, train_batch=sft_batch, trains_on_options=False)
    data = W2SDataModule(task, teacher=None).connect(student, SimpleNamespace(examples=QUESTIONS[:1], labels=["C"]))
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != -100]) == " C"  # the letter, not "blue"
    assert "option_ids" in next(iter(data.val_dataloader()))  # evaluated by the letters' logits


@pytest.mark.parametrize("cuda,amx,expected", [(False, False, "float32"), (False, True, "bfloat16"),
                                               (True, False, "bfloat16")])
def test_dtype_fast_is_bfloat16_only_where_the_hardware_has_it(monkeypatch, cuda, amx, expected):
    from w2s.models import fast_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert fast_dtype("fast") == expected and fast_dtype("float16") == "float16"


def test_shards_whose_questions_offer_different_numbers_of_options_concatenate():
    """ARC offers 3 to 5 options: a shard of 4-option questions and one with a 5-option question join, the
    options a question does not offer at -inf."""
    from dataclasses import replace

    from conftest import synthetic_outputs
    from w2s.outputs import TeacherOutputs

    four, five = synthetic_outputs(3, 0), synthetic_outputs(2, 1)
    four = replace(four, option_logprobs=np.zeros((3, 4), np.float32))
    five = replace(five, option_logprobs=np.ones((2, 5), np.float32))
    joined = TeacherOutputs.concat([four, five]).option_logprobs
    assert joined.shape == (5, 5) and np.isneginf(joined[:3, 4]).all() and (joined[3:] == 1).all()
