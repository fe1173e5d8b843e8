"""Burns et al.'s auxiliary confidence loss: the formula against a direct implementation, the warm-up ramp, the
hardening, and weight 0 equal to the student's plain cross-entropy on both multiple-choice interfaces."""

import re
from types import SimpleNamespace

import pytest
import torch

from students.losses import aux_weight, logconf_loss
from test_likelihood import QUESTIONS, setting  # noqa: F401 (the tiny LM and its questions)
from w2s.errors import W2SError
from w2s.tasks import LocalMultipleChoice


@pytest.mark.parametrize("step,expected", [(0, 0.0), (5, 0.25), (10, 0.5), (60, 0.5), (100, 0.5)])
def test_the_weight_ramps_linearly_over_the_warmup(step, expected):
    assert aux_weight(step, 100, aux_coef=0.5, aux_warmup=0.1) == pytest.approx(expected)


def test_no_warmup_means_the_full_weight_from_the_first_step():
    assert aux_weight(0, 100, aux_coef=0.3, aux_warmup=0.0) == 0.3


def direct_soft_cross_entropy(logits: torch.Tensor, weak: torch.Tensor, weight: float) -> torch.Tensor:
    """Burns et al.'s loss written out: the soft target (1 − w)·onehot(weak) + w·onehot(argmax of the student's
    own probabilities), cross-entropy averaged over the batch."""
    total = torch.zeros(())
    for b in range(len(weak)):
        target = torch.zeros(logits.shape[1])
        target[weak[b]] += 1 - weight
        target[int(logits[b].argmax())] += weight
        total = total - (target * logits[b].log_softmax(-1)).sum()
    return total / len(weak)


@pytest.mark.parametrize("weight", [0.0, 0.2, 0.5, 1.0])
def test_with_one_token_per_option_the_loss_is_burns_soft_target_cross_entropy(weight):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 4, generator=generator)  # [B, K]
    weak = torch.randint(0, 4, (16,), generator=generator)
    ours = logconf_loss(logits.log_softmax(-1), torch.ones(16, 4), weak, weight)
    assert ours.item() == pytest.approx(direct_soft_cross_entropy(logits, weak, weight).item(), rel=1e-6)


def test_longer_completions_are_normalised_per_token_and_absent_options_are_never_chosen():
    logprobs = torch.tensor([[-2.0, -6.0, -1.0, float("-inf")],  # argmax: option 2
                             [-3.0, -0.5, -4.0, -5.0]])  # argmax: option 1
    tokens = torch.tensor([[1.0, 3.0, 2.0, 0.0], [2.0, 1.0, 1.0, 1.0]])
    weak = torch.tensor([1, 0])
    w = 0.3
    weak_term = (6.0 + 3.0) / (3.0 + 2.0)
    own_term = (1.0 + 0.5) / (2.0 + 1.0)
    assert logconf_loss(logprobs, tokens, weak, w).item() == pytest.approx((1 - w) * weak_term + w * own_term)


def test_the_prediction_is_hardened_from_the_decision_scores_and_carries_no_gradient():
    """The student's own label is the argmax of the scores it answers by (e.g. per character), detached: the
    gradient reaches only the log-probabilities of the weak and the predicted option."""
    logprobs = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    decision = torch.tensor([[0.0, 0.0, 1.0]], requires_grad=True)  # answers option 2, not the likeliest 0
    loss = logconf_loss(logprobs, torch.ones(1, 3), torch.tensor([1]), 0.5, decision)
    assert loss.item() == pytest.approx(0.5 * 2.0 + 0.5 * 3.0)
    loss.backward()
    assert logprobs.grad.tolist() == [[0.0, -0.5, -0.5]] and decision.grad is None


@pytest.mark.parametrize("interface", ["letters", "likelihood"])
def test_on_a_real_batch_weight_zero_is_plain_cross_entropy_and_the_mix_adds_the_own_prediction(setting, interface):  # noqa: F811
    """The logconf student with aux_coef 0 gives the xent student's loss on the same rows (same LoRA init); with
    aux_coef 0.5 past the warm-up it gives 0.5 · that + 0.5 · the xent loss on the student's own predictions."""
    from students import LoRASFTStudent
    from w2s.data import W2SDataModule

    root, lm = setting
    task = LocalMultipleChoice(str(root / "data"), interface=interface)
    examples, labels = QUESTIONS[:6], ["A", "C", "C", "A", "D", "B"]  # odd questions offer three options

    def first_loss(labels: list[str], step: int = 0, **options) -> tuple[float, LoRASFTStudent, dict]:
        torch.manual_seed(0)
        student = LoRASFTStudent(str(lm), **options)
        data = W2SDataModule(task, teacher=None, batch_size=6).connect(
            student, SimpleNamespace(examples=examples, labels=labels))
        data.setup("fit")
        batch = next(iter(data.train_dataloader()))
        student.trainer = SimpleNamespace(datamodule=data, estimated_stepping_batches=10, global_step=step)
        student.log = lambda *args, **kwargs: None
        with torch.no_grad():
            return student.training_step(batch, 0).item(), student, batch

    xent, _, _ = first_loss(labels)
    zero, student, batch = first_loss(labels, loss="logconf", aux_coef=0.0)
    assert zero == pytest.approx(xent, rel=1e-5)
    with torch.no_grad():
        predicted = student.option_logprobs(batch)[2].argmax(1)  # [6] the student's own answers, in batch order
    order = list(student.trainer.datamodule.train_dataloader().sampler)  # batch row j is examples[order[j]]
    own = [None] * len(examples)
    for j, k in enumerate(predicted.tolist()):
        own[order[j]] = "ABCD"[k]
    own_xent, _, _ = first_loss(own)
    mixed, _, _ = first_loss(labels, step=5, loss="logconf", aux_coef=0.5)  # past the warm-up: weight 0.5
    assert mixed == pytest.approx(0.5 * xent + 0.5 * own_xent, rel=1e-5) and own != labels


@pytest.mark.parametrize("option,value,words", [("aux_coef", 1.5, "in [0, 1]"), ("aux_coef", -0.1, "in [0, 1]"),
                                               ("aux_warmup", 1.0, "in [0, 1)"), ("loss", "hinge", "xent or")])
def test_out_of_range_loss_options_are_one_line(setting, option, value, words):  # noqa: F811
    from students import LoRASFTStudent

    with pytest.raises(W2SError, match=re.escape(f"LoRASFTStudent.{option} must be {words}")):
        LoRASFTStudent(str(setting[1]), **{option: value})


def test_a_free_form_task_has_no_options_to_harden_over(setting):  # noqa: F811
    import datasets

    from students import LoRASFTStudent
    from w2s.data import W2SDataModule
    from w2s.tasks.base import Task

    class FreeForm(Task):
        def load_splits(self) -> datasets.DatasetDict:
            rows = [{"id": "0", "question": "1 + 1 =", "answer": "2"}]
            return datasets.DatasetDict({s: datasets.Dataset.from_list(rows) for s in ("source", "target", "test")})

        def prompt(self, example: dict) -> str:
            return example["question"]

        def completion(self, label: str, example: dict) -> str:
            return " " + label

    student = LoRASFTStudent(str(setting[1]), loss="logconf")
    data = W2SDataModule(FreeForm(), teacher=None).connect(
        student, SimpleNamespace(examples=[{"id": "0", "question": "1 + 1 =", "answer": "2"}], labels=["2"]))
    with pytest.raises(W2SError, match="trains on every option of a question .* but FreeForm is free-form; use "
                                       "loss: xent"):
        data.setup("fit")


def test_with_gradient_checkpointing_the_option_loss_scores_full_sequences_with_the_same_gradients(setting):  # noqa: F811
    """Gradient checkpointing turns the key/value cache off in training, so the loss over every option then
    scores full sequences instead of continuing each prompt's cache: same loss, same LoRA gradients."""
    from students import LoRASFTStudent
    from w2s.data import W2SDataModule

    root, lm = setting
    task = LocalMultipleChoice(str(root / "data"), interface="likelihood")
    losses, grads = [], []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        student = LoRASFTStudent(str(lm), loss="logconf", gradient_checkpointing=checkpointing)
        for name, p in student.named_parameters():  # LoRA's B starts at zero, which would hide A's gradient
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.1)
        data = W2SDataModule(task, teacher=None, batch_size=6).connect(
            student, SimpleNamespace(examples=QUESTIONS[:6], labels=["A", "C", "C", "A", "D", "B"]))
        data.setup("fit")
        student.trainer = SimpleNamespace(datamodule=data, estimated_stepping_batches=10, global_step=5)
        student.log = lambda *args, **kwargs: None
        loss = student.training_step(next(iter(data.train_dataloader())), 0)
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad for n, p in student.named_parameters() if p.requires_grad})
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5, rtol=1e-3, msg=name)
