"""The chess task: Stockfish ground truth on positions with a known best move, move parsing, position files."""

from __future__ import annotations

import json

import pytest
import torch

from w2s.errors import W2SError
from w2s.tasks.chess import Chess, read_positions
from w2s.tasks.stockfish import EngineSettings, label_positions

MATE_IN_ONE = "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"  # Ra8#, a back-rank mate
FREE_QUEEN = "4k3/8/8/3q4/8/8/8/3QK3 w - - 0 1"  # Qxd5 wins an undefended queen
SCHOLAR = "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"  # Qxf7#
BLACK_MATES = "r5k1/8/8/8/8/8/5PPP/6K1 b - - 0 1"  # Ra1# for black


@pytest.mark.engine
@pytest.mark.parametrize("fen,best", [(MATE_IN_ONE, "a1a8"), (FREE_QUEEN, "d1d5"), (SCHOLAR, "h5f7"),
                                      (BLACK_MATES, "a8a1")])
def test_stockfish_finds_the_known_best_move(fen, best, cache_root):
    (label,) = label_positions([fen], EngineSettings(depth=8))
    assert label["best"] == best and label["score"] > 500 and label["losses"] is None


@pytest.mark.engine
def test_centipawn_tolerance_and_the_label_cache(cache_root, monkeypatch):
    settings = EngineSettings(depth=6, all_moves=True)
    first = label_positions([FREE_QUEEN], settings)[0]
    assert first["losses"]["d1d5"] == 0 and min(v for m, v in first["losses"].items() if m != "d1d5") > 500
    task = Chess(path="unused", max_cp_loss=50)
    assert task.accepted(first) == ["d1d5"]
    assert Chess(path="unused", max_cp_loss=100_000).accepted(first)[0] == "d1d5"
    assert len(Chess(path="unused", max_cp_loss=100_000).accepted(first)) == len(first["losses"])
    # labels are cached per position and setting: a second call needs no engine
    monkeypatch.setattr("w2s.tasks.stockfish.find_stockfish", lambda path=None: pytest.fail("engine restarted"))
    assert label_positions([FREE_QUEEN], settings)[0] == first


def test_a_missing_engine_names_the_install_command(cache_root):
    with pytest.raises(W2SError, match=r"does not exist; install it with `apt-get install stockfish`"):
        label_positions([MATE_IN_ONE], EngineSettings(depth=2), engine_path="/no/such/stockfish")


@pytest.mark.parametrize("bad,message", [("not a fen", "is not a valid FEN"),
                                         ("8/8/8/8/8/8/8/8 w - - 0 1", "is not a legal chess position"),
                                         ("R5k1/5ppp/8/8/8/8/8/6K1 b - - 1 1", "has no legal move")])
def test_bad_positions_are_refused_with_or_without_an_engine(bad, message, cache_root, monkeypatch):
    """A bad position is named before any engine is looked for (also where Stockfish is installed)."""
    monkeypatch.setattr("w2s.tasks.stockfish.find_stockfish", lambda path=None: pytest.fail("engine looked for"))
    with pytest.raises(W2SError, match=message):
        label_positions([MATE_IN_ONE, bad], EngineSettings(depth=2))


@pytest.mark.parametrize("generation,expected", [
    (" a1a8", "a1a8"),
    (" Ra8#", "a1a8"),  # SAN, written back as UCI
    ("The best move is Ra8.", "a1a8"),
    (" a1a9", None),  # not a move
    (" a1b3", "a1b3"),  # illegal here: a weak label, and a wrong one
    (" resign", None),
    (" Nb3", None),  # SAN must be legal to be read
])
def test_weak_labels_are_parsed_from_uci_or_san(generation, expected):
    assert Chess(path="unused").parse(generation, {"fen": MATE_IN_ONE}) == expected


@pytest.mark.parametrize("answer,right", [(" Ra8#", True), (" a1a8", True), (" Ra7", False), (" nothing", False)])
def test_a_san_answer_is_scored_alike_by_teacher_student_and_grpo_reward(answer, right):
    """One parse, always in the example's context: the teacher's correctness (``Teacher.assemble``), the student's
    accuracy (``LoRAStudent``) and the GRPO reward all go through ``task.judge``."""
    from types import SimpleNamespace

    from students.grpo import GRPOStudent
    from w2s.batching import generation_batch

    task, example = Chess(path="unused"), {"fen": MATE_IN_ONE, "answer": "a1a8", "accepted": "a1a8"}
    gold = task.gold(example)
    teacher_label = task.parse(answer, example)  # what the teacher pass stores as the weak label
    assert task.is_correct(teacher_label, gold) is right

    class Decoder:
        pad_token_id = 0

        def batch_decode(self, sequences, skip_special_tokens=True):
            return [answer]

    class Policy:
        def generate(self, input_ids, **kwargs):
            return torch.cat([input_ids, torch.ones((len(input_ids), 1), dtype=torch.long)], 1)

    student = SimpleNamespace(model=Policy(), tokenizer=Decoder(), max_new_tokens=4, device="cpu",
                              trainer=SimpleNamespace(datamodule=SimpleNamespace(student_task=task)),
                              hparams=SimpleNamespace(format_reward=0.0), reward_fn=None)
    batch = generation_batch([{"prompt_ids": [5, 6], "gold": gold, "example": example, "group": 0}], pad=0)
    assert GRPOStudent._generated_accuracy(student, batch).tolist() == [float(right)]  # the student's evaluation
    assert GRPOStudent._reward(student, answer, "a1a8", example) == (float(right), float(right))  # GRPO reward


def test_prompt_completion_and_correctness():
    task = Chess(path="unused")
    prompt = task.prompt({"fen": FREE_QUEEN})
    assert prompt.startswith(f"Position (FEN): {FREE_QUEEN}\nWhite to move.\nLegal moves: ")
    assert " d1d5 " in prompt and prompt.endswith("\nBest move:")
    assert "Legal moves" not in Chess(path="unused", legal_moves=False).prompt({"fen": FREE_QUEEN})
    assert task.completion("d1d5 d1d4", {}) == " d1d5"
    assert task.is_correct("d1d4", "d1d5 d1d4")
    assert not task.is_correct("d1e2", "d1d5") and not task.is_correct(None, "d1d5")


def test_positions_files(tmp_path):
    (tmp_path / "p.fen").write_text(f"# a comment\n{MATE_IN_ONE}\n\n{FREE_QUEEN}\n")
    assert read_positions(str(tmp_path / "p.fen")) == [MATE_IN_ONE, FREE_QUEEN]
    (tmp_path / "g.pgn").write_text('[Event "x"]\n\n1. e4 e5 2. Qh5 Nc6 3. Bc4 Nf6 4. Qxf7# 1-0\n')
    fens = read_positions(str(tmp_path / "g.pgn"), min_ply=5)
    assert len(fens) == 2 and fens[1].startswith("r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3")  # plies 5, 6; 7 mates
    (tmp_path / "p.jsonl").write_text(json.dumps({"position": MATE_IN_ONE}) + "\n")
    assert read_positions(str(tmp_path / "p.jsonl"), fen_field="position") == [MATE_IN_ONE]
    with pytest.raises(W2SError, match="has no 'fen' column"):
        read_positions(str(tmp_path / "p.jsonl"))
    with pytest.raises(W2SError, match="does not exist"):
        read_positions(str(tmp_path / "none.fen"))
    with pytest.raises(W2SError, match="needs source, target and test"):
        Chess(source=str(tmp_path / "p.fen"))


@pytest.mark.engine
def test_chess_splits_are_labelled_from_files(tmp_path, cache_root):
    (tmp_path / "a.fen").write_text(f"{MATE_IN_ONE}\n{FREE_QUEEN}\n")
    (tmp_path / "b.fen").write_text(f"{SCHOLAR}\n")
    task = Chess(source=str(tmp_path / "a.fen"), target=str(tmp_path / "b.fen"), test=str(tmp_path / "b.fen"),
                 engine_depth=6)
    splits = task.load()
    assert splits["source"]["answer"] == ["a1a8", "d1d5"] and splits["target"]["answer"] == ["h5f7"]
    assert splits["target"]["id"] == ["b:target/0"] and task.gold(splits["source"][1]) == "d1d5"


def test_a_saved_dataset_without_labels_is_refused(tmp_path):
    import datasets

    unlabelled = datasets.Dataset.from_dict({"id": ["0"], "fen": [MATE_IN_ONE]})
    splits = {name: unlabelled for name in ("source", "target", "test")}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(W2SError, match=r"lacks column\(s\) \['accepted', 'answer', 'benchmark', 'options'\]"):
        Chess(path=str(tmp_path / "d")).load()
