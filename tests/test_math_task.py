"""The math task: final-answer extraction, equivalence by math-verify, and splits from MATH-shaped files."""

from __future__ import annotations

import json

import pytest

from w2s.errors import W2SError
from w2s.tasks.math_reasoning import MathReasoning, equivalent, last_boxed


@pytest.mark.parametrize("text,answer", [
    ("so the total is \\boxed{42}.", "42"),
    ("first \\boxed{1}, then finally \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("nested \\boxed{\\sqrt{x^{2}+1}} done", "\\sqrt{x^{2}+1}"),
    ("\\fbox{7}", "7"),
    ("no box here", None),
    ("unbalanced \\boxed{3", None),
])
def test_last_boxed(text, answer):
    assert last_boxed(text) == answer


@pytest.mark.parametrize("a,b,same", [
    ("\\frac{1}{2}", "0.5", True), ("2", "3", False), ("x+1", "1+x", True), ("\\sqrt{4}", "2", True),
    (None, "2", False), ("10\\%", "10", True),
])
def test_equivalence_by_math_verify(a, b, same):
    assert equivalent(a, b) is same


SOLUTIONS = [  # (solution, gold answer, right? — None: no final answer, counted wrong)
 (r"Adding, $3 + 4 = 7$, so the answer is $\boxed{7}$.", "7", True),
 (r"Thus $x = \boxed{\frac{3}{4}}$.", r"\frac{3}{4}", True),
 (r"We get $\boxed{\dfrac{3}{4}}$.", r"\frac{3}{4}", True),
 (r"The probability is $\boxed{\tfrac{1}{6}}$.", r"\frac{1}{6}", True),
 (r"so the ratio is $\boxed{0.75}$", r"\frac{3}{4}", True),
 (r"Hence the area is $\boxed{12\text{ cm}^2}$.", "12", True),
 (r"The distance is $\boxed{5 \text{ meters}}$.", "5", True),
 (r"First $\boxed{2}$ is wrong; correcting, the answer is $\boxed{3}$.", "3", True),
 (r"First $\boxed{2}$ is wrong; correcting, the answer is $\boxed{3}$.", "2", False),
 (r"The answer is 42.", "42", None),
 (r"Completing the square gives $\boxed{(x-1)^{2}+2}$.", r"(x-1)^2+2", True),
 (r"So $\boxed{\sqrt{2}}$.", r"\sqrt{2}", True),
 (r"So $\boxed{2\sqrt{2}}$.", r"\sqrt{8}", True),
 (r"The roots are $\boxed{-3}$.", "-3", True),
 (r"The angle is $\boxed{30^\circ}$.", "30", True),
 (r"It grows by $\boxed{25\%}$.", "25", True),
 (r"The cost is $\boxed{\$18.90}$.", "18.90", True),
 (r"The point is $\boxed{(3, -4)}$.", "(3,-4)", True),
 (r"The point is $\boxed{(3, -4)}$.", "(-4,3)", False),
 (r"The interval is $\boxed{[2, 5)}$.", "[2,5)", True),
 (r"The solutions are $\boxed{1, 2}$.", "1,2", True),
 (r"The volume is $\boxed{36\pi}$.", r"36\pi", True),
 (r"We find $\boxed{\frac{\sqrt{3}}{2}}$.", r"\frac{\sqrt{3}}{2}", True),
 (r"Nested: $\boxed{\frac{1}{1+\frac{1}{2}}}$", r"\frac{2}{3}", True),
 (r"Total: $\boxed{1{,}000}$.", "1000", True),
 (r"Therefore $\boxed{x=5}$.", "5", True),
 (r"Therefore $\boxed{5}$.", "6", False),
 (r"So the sum is $\boxed{\frac{7}{2}}$, i.e. 3.5.", "3.5", True),
 (r"The answer is \boxed{ 14 }", "14", True),
 (r"\fbox{9} is the final answer", "9", True),
 (r"The remainder is $\boxed{0}$", "10", False),
 (r"unfinished: $\boxed{\frac{1}{2}", r"\frac12", None),
 (r"So $\boxed{\frac12}$.", r"\frac{1}{2}", True),
 (r"The matrix is $\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}$.", r"\begin{pmatrix}1\\2\end{pmatrix}", True),
 (r"$\boxed{e^{2}}$", r"e^2", True),
]


@pytest.mark.parametrize("solution,gold,right", SOLUTIONS)
def test_final_answers_of_real_looking_solutions(solution, gold, right):
    """The last \\boxed{} of a solution (nested braces, \\dfrac, units, several boxes, none) and its equivalence
    with gold by math-verify: what makes a weak label right, and what GRPO rewards."""
    answer = last_boxed(solution)
    assert (answer is None) == (right is None)
    if answer is not None:
        assert equivalent(answer, gold) is right


def write_math(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


MATH_ROWS = [{"problem": f"What is {i} + {i}?", "level": f"Level {1 + i % 5}", "type": "Prealgebra",
              "solution": f"We add: {i} + {i} = \\boxed{{{2 * i}}}."} for i in range(12)]


def test_math_schema_answers_come_from_the_solution(tmp_path):
    path = write_math(tmp_path / "math.jsonl", MATH_ROWS)
    task = MathReasoning(source=f"{path}[:50%]", target=f"{path}[50%:75%]", test=f"{path}[75%:]",
                         answer_field=None, solution_field="solution")
    splits = task.load()
    assert [len(splits[s]) for s in ("source", "target", "test")] == [6, 3, 3]
    for ex in splits["source"]:
        i = int(ex["id"].split("/")[-1])
        assert ex["answer"] == str(2 * i) and ex["problem"] == MATH_ROWS[i]["problem"]
    ex = splits["source"][0]
    assert task.prompt(ex).startswith(ex["problem"]) and "\\boxed{}" in task.prompt(ex)
    assert task.judge(f"so it is \\boxed{{{ex['answer']}.0}}", ex, ex["answer"])
    assert task.reward("I think \\boxed{-1}", ex["answer"], ex) == 0.0
    assert task.parse("no final answer", ex) is None and not task.is_correct(None, ex["answer"])


def test_omni_and_aime_schemas_read_the_answer_column(tmp_path):
    omni = write_math(tmp_path / "omni.jsonl", [{"domain": ["Algebra"], "difficulty": 3.5, "problem": f"p{i}",
                                                 "solution": "...", "answer": f"{i}/2", "source": "x"} for i in range(8)])
    aime = write_math(tmp_path / "aime.jsonl", [{"id": 60 + i, "problem": f"q{i}", "solution": "...",
                                                 "answer": str(100 + i), "url": "u"} for i in range(6)])
    splits = MathReasoning(source=str(omni), target=f"{aime}[:3]", test=f"{aime}[3:]", id_field="id").load()
    assert splits["source"]["answer"][:2] == ["0/2", "1/2"]
    assert splits["target"]["id"][0].startswith("aime:train/6") and len(splits["test"]) == 3


def test_answer_pattern_and_bad_input(tmp_path):
    task = MathReasoning(source="math", target="omni_math", test="aime", answer_pattern=r"answer is (\S+)")
    assert task.parse("the answer is 5, no wait, the answer is 6", {}) == "6"
    assert task.hub_datasets() == ["AI-MO/aimo-validation-aime", "DigitalLearningGmbH/MATH-lighteval",
                                   "KbsdJames/Omni-MATH"]
    with pytest.raises(W2SError, match="not a regular expression"):
        MathReasoning(source="math", target="math", test="math", answer_pattern="(")
    path = write_math(tmp_path / "bad.jsonl", [{"question": "q", "answer": "1"}] * 4)
    with pytest.raises(W2SError, match="problem_field"):
        MathReasoning(source=f"{path}[:2]", target=f"{path}[2:3]", test=f"{path}[3:]").load()
    unboxed = write_math(tmp_path / "unboxed.jsonl", [{"problem": "q", "solution": "no box"}] * 4)
    with pytest.raises(W2SError, match="no gold answer"):
        MathReasoning(source=f"{unboxed}[:2]", target=f"{unboxed}[2:3]", test=f"{unboxed}[3:]",
                      answer_field=None, solution_field="solution").load()


def test_free_form_teacher_pass_reads_boxed_answers_and_checks_them_by_equivalence(tmp_path):
    """A tiny Qwen3 taught to write short solutions: multi-token generation stops at EOS, the weak label is the
    last \\boxed{} of each, correctness is math-verify equivalence with gold, and the output-layer signals cover
    the generated tokens."""
    import numpy as np
    from hub_fixtures import save_tiny_lm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from w2s.teacher import Teacher

    path = write_math(tmp_path / "math.jsonl", MATH_ROWS)
    task = MathReasoning(source=f"{path}[:6]", target=f"{path}[6:9]", test=f"{path}[9:]", answer_field=None,
                         solution_field="solution")
    split = task.load()["source"]
    # right for half the problems; for the other half it writes 2i as a fraction (equivalent) or a wrong number
    written = [f"\\boxed{{{2 * int(ex['id'].split('/')[-1]) * 3}/3}}" if k % 3 == 0 else
               f"\\boxed{{{int(ex['answer']) + 1}}}" if k % 3 == 1 else f"\\boxed{{{ex['answer']}}}"
               for k, ex in enumerate(split)]
    model_dir = save_tiny_lm(tmp_path / "teacher", "qwen3", [r["problem"] for r in MATH_ROWS] + written,
                             completions=[(task.prompt(ex), f"So {w}") for ex, w in zip(split, written)])
    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    outputs = Teacher(str(model_dir), max_new_tokens=16).run(model, tokenizer, task, split)
    assert all(g.endswith("}") for g in outputs.generations), outputs.generations  # stopped at EOS
    expected = [w.removeprefix("\\boxed{").removesuffix("}") for w in written]
    assert outputs.weak_labels == expected
    assert outputs.correct.tolist() == [k % 3 != 1 for k in range(len(split))]  # 4i/... equals 2i: right
    assert outputs.option_logprobs is None and np.isfinite(outputs.hidden).all()
    assert (outputs.token_logprobs < 0).all() and (outputs.token_entropy >= 0).all()
