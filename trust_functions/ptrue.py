"""``PTrue`` (Kadavath et al. 2022): the teacher, shown its own answer, asked whether it is true."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from trust_functions.base import TrustFunction
from trust_functions.icl import FewShot
from w2s.errors import W2SError
from w2s.outputs import TeacherOutputs
from w2s.tasks.base import Task

TRUE, FALSE = "A", "B"  # the two options of the question, as labels


class ProposedAnswer(FewShot):
    """The task's prompt, the teacher's own answer to it, and a question whether that answer is true, with the two
    continuations ``true`` / ``false`` scored by likelihood (any task: multiple choice or free form)."""

    def __init__(self, task: Task, answers: dict[str, str], question: str, true: str, false: str) -> None:
        super().__init__(task, "")
        self._answers, self._question, self._texts = answers, question, [true, false]
        self.normalize = "sum"

    def prompt(self, example: dict) -> str:
        return self._task.prompt(example) + self._answers[str(example["id"])] + self._question

    @property
    def generates(self) -> bool:
        return False  # the two judgements are scored by likelihood

    def option_texts(self, example: dict) -> list[str]:
        return self._texts

    def options(self, example: dict) -> list[str]:
        return [TRUE, FALSE]

    def option_token_ids(self, tokenizer, example: dict) -> None:
        return None

    def completion(self, label: str, example: dict) -> str:
        return self._texts[[TRUE, FALSE].index(label)]

    def parse(self, generation: str, example: dict) -> str:
        return TRUE if generation.strip() == self._texts[0].strip() else FALSE

    def gold(self, example: dict) -> str:
        return TRUE  # (the pass's own correctness means nothing: only its probabilities are read)

    def is_correct(self, label: str | None, gold: str) -> bool:
        return label == gold

    def fingerprint(self) -> dict:
        question = hashlib.sha256("\0".join([self._question, *self._texts]).encode()).hexdigest()[:16]
        return {**self._task.fingerprint(), "p_true": question}


class PTrue(TrustFunction):
    """P(True): a second teacher pass shows each example's prompt with the teacher's own answer (its generation)
    and asks ``question``; the score is the probability of ``true`` against ``false`` as the continuation. The
    default asks as Kadavath et al. do, with the two judgements as lettered options (the format of this library's
    multiple-choice prompts), and compares the letters. The pass covers the source and the target sets and is
    cached like the main pass; nothing is fitted.

    Args:
        question: text after the proposed answer, ending where ``true`` / ``false`` continue it.
        true, false: the two continuations compared (they must be different tokens for the teacher's tokenizer).
    """

    row, title = "ptrue", "P(True)"

    def __init__(self, question: str = "\nIs the proposed answer true?\nA. True\nB. False\nAnswer:",
                 true: str = " A", false: str = " B") -> None:
        if not true.strip() or not false.strip() or true.strip() == false.strip():
            raise W2SError(f"PTrue needs two different, non-empty continuations (got true={true!r}, false={false!r})")
        self.question, self.true, self.false = question, true, false
        self.p_true: dict[str, float] = {}

    def prepare(self, teacher, task: Task, splits) -> None:
        from w2s.models import load_tokenizer

        tokenizer = load_tokenizer(teacher.model, teacher.trust_remote_code)
        true, false = (tokenizer(t, add_special_tokens=False).input_ids for t in (self.true, self.false))
        if true == false:
            raise W2SError(f"PTrue: the continuations {self.true!r} and {self.false!r} are the same tokens {true} for "
                           f"the teacher's tokenizer (words it does not know?); set trust.init_args.true / false to "
                           "continuations it tells apart")
        parts = {name: splits[name] for name in ("source", "target")}
        passes = teacher.label(task, parts)  # the protocol's own pass: read from the cache
        for name, outputs in passes.items():
            answers = dict(zip(outputs.ids, outputs.generations))
            asked = ProposedAnswer(task, answers, self.question, self.true, self.false)
            probs = torch.softmax(torch.as_tensor(np.asarray(teacher.label(asked, {name: parts[name]})[name]
                                                             .option_logprobs), dtype=torch.float32), dim=-1)
            self.p_true.update(zip(outputs.ids, probs[:, 0].tolist()))

    def score(self, outputs: TeacherOutputs) -> torch.Tensor:
        missing = [i for i in outputs.ids if i not in self.p_true]
        if missing:
            raise W2SError(f"PTrue has no P(True) pass for {len(missing)} of these examples (first: {missing[0]}); "
                           "the protocol runs it (prepare) on the source and target splits")
        return torch.tensor([self.p_true[i] for i in outputs.ids], dtype=torch.float32)
