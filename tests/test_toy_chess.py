"""The toy chess world (positions from random games, Stockfish labels, tiny models) and the chess protocol from
the command line, in both interfaces (move generation; multiple choice for the OOD_domain experiment)."""

from __future__ import annotations

import json

import chess
import datasets
import numpy as np
import pytest
import yaml
from conftest import ROOT, run_main

from w2s.tasks import Chess
from w2s.tasks.stockfish import EngineSettings, label_positions


@pytest.mark.engine
def test_the_toy_chess_world_holds_labelled_positions_and_models(tiny_chess_world):
    from transformers import AutoTokenizer

    splits = datasets.load_from_disk(str(tiny_chess_world / "data"))
    assert {k: len(v) for k, v in splits.items()} == {"source": 40, "target": 28, "test": 12}
    assert all(6 <= p <= 20 for p in splits["source"]["ply"]) and all(30 <= p <= 60 for p in splits["target"]["ply"])
    assert not set(splits["source"]["fen"]) & {*splits["target"]["fen"], *splits["test"]["fen"]}
    sample = splits["target"].select(range(5))
    assert [lab["best"] for lab in label_positions(sample["fen"], EngineSettings(depth=4))] == sample["answer"]
    for row in sample:
        assert chess.Move.from_uci(row["answer"]) in chess.Board(row["fen"]).legal_moves
        assert row["answer"] in row["options"] and len(set(row["options"])) == 4
    tokenizer = AutoTokenizer.from_pretrained(tiny_chess_world / "teacher")
    ids = tokenizer(" " + sample[0]["answer"], add_special_tokens=False).input_ids
    assert len(ids) == 1 and tokenizer.decode(ids) == sample[0]["answer"]  # a move is one token
    assert (tiny_chess_world / "student" / "config.json").is_file()


def test_multiple_choice_interface():
    example = {"fen": "4k3/8/8/3q4/8/8/8/3QK3 w - - 0 1", "answer": "d1d5", "options": ["d1e2", "d1d5", "e1f2", "d1a4"],
               "interface": "mcqa"}
    task = Chess(path="unused", mcqa_splits=["source"])
    prompt = task.prompt(example)
    assert prompt.endswith("Which move is best?\nA. d1e2\nB. d1d5\nC. e1f2\nD. d1a4\nAnswer:")
    assert task.gold(example) == "B" and task.parse(" B", example) == "B" and task.parse(" E", example) is None
    assert task.is_correct("B", task.gold(example)) and task.judge(" (B)", example, task.gold(example))
    assert task.gold({**example, "interface": "move"}) == "d1d5"


@pytest.mark.engine
def test_toy_chess_config_runs_the_protocol_across_interfaces(tiny_chess_world, tmp_path):
    """fit with the toy chess config, the trust function fitted on multiple-choice source outputs and applied to
    move answers on the target (the OOD_domain setting; the in-domain one differs only in the source prompts)."""
    proc = run_main("fit", "--config", str(ROOT / "configs" / "toy_chess_ood_domain.yaml"),
                    "--data.task", "w2s.tasks.Chess", "--data.task.path", str(tiny_chess_world / "data"),
                    "--data.task.legal_moves", "false", "--data.task.mcqa_splits", '["source"]',
                    "--data.teacher.model", str(tiny_chess_world / "teacher"),
                    "--model.model", str(tiny_chess_world / "student"), "--trust.init_args.max_epochs", "3",
                    "--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false", "--data.batch_size", "4",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "toy_chess_ood_domain" / "version_0"
    results = json.loads((run_dir / "results.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())  # the resolved config saved beside the run
    assert results["selection"]["n"] == round(config["data"]["selection"]["init_args"]["fraction"] * 28)
    assert 0.0 < results["teacher"]["accuracy"]["source"] < 1.0  # the trust function had both kinds to learn
    unparsed = results["teacher"]["unparsed"]
    assert unparsed["source"] < 20 and 0 <= unparsed["target"] <= 28  # the source's letters parse
    assert np.isnan(results["trust"]["auc"]) or 0.0 <= results["trust"]["auc"] <= 1.0  # nan: one-class target
