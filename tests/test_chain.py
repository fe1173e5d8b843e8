"""The weak-to-strong chain: generation 2's teacher is generation 1's merged student; an interrupted chain
resumes at the generation it was in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, error_message, run_cli, run_main


def chain_config(world: Path, tmp_path: Path) -> Path:
    """configs/toy_chain.yaml on the tiny world: two generations of the tiny student, no ground-truth runs;
    generation 1's trust function is reused (the tiny teacher and student have one hidden size)."""
    config = {"base": str(ROOT / "configs" / "toy_chain.yaml"),  # a delta over the shipped chain config
              "chain": {"students": [str(world / "student")] * 2, "ground_truth": False, "collapse_margin": 1.0,
                        "trust": "reuse"},
              "data": {"task": {"class_path": "w2s.tasks.LocalMultipleChoice",
                                "init_args": {"path": str(world / "data")}},
                       "teacher": {"model": str(world / "teacher")}},
              "trust": {"init_args": {"max_epochs": 3}},
              "trainer": {"max_steps": 6, "enable_progress_bar": False}}
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_chain_teaches_with_the_merged_student_and_resumes_in_generation_two(tiny_world, tmp_path):
    config, out = chain_config(tiny_world, tmp_path), tmp_path / "out"
    args = [sys.executable, str(ROOT / "main.py"), "chain", "--config", str(config), "--output_dir", str(out),
            "--in_process"]
    # first attempt: killed as soon as generation 2 has started
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=os.environ.copy())
    gen1, gen2 = out / "seed0" / "gen1", out / "seed0" / "gen2"
    deadline = time.time() + 600
    while not (gen2 / "trust.log").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the chain ended before generation 2 started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    first = (gen1 / "trust" / "results.json").read_bytes()
    stamp = (gen1 / "trust" / "results.json").stat().st_mtime_ns

    rerun = run_main(*args[2:], cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "generation 1" not in rerun.stdout and "generation 2: trust run" in rerun.stdout  # resumed at gen 2
    assert (gen1 / "trust" / "results.json").read_bytes() == first
    assert (gen1 / "trust" / "results.json").stat().st_mtime_ns == stamp
    report = json.loads((out / "results.json").read_text())
    generations = report["generations"]["0"]
    assert len(generations) == 2 and generations[1]["teacher"] == generations[0]["merged"] == str(gen1 / "merged")
    assert (out / "chain.md").read_text().count("\n| ") == 2  # a row per generation

    # generation 2's teacher: the generation-1 student with its adapter merged — not the base, the same outputs
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(gen1 / "merged").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_world / "student").eval()
    assert any(not torch.equal(p, base.state_dict()[n]) for n, p in merged.state_dict().items())
    student = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_world / "student"),
                                        gen1 / "trust" / "student_adapter").eval()
    ids = torch.randint(3, merged.config.vocab_size, (4, 12))
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, student(ids).logits, atol=1e-4)
    run_config = yaml.safe_load((gen2 / "trust" / "config.yaml").read_text())
    assert run_config["data"]["teacher"]["init_args"]["model"] == str(gen1 / "merged")
    # trust: reuse — generation 2's weak labels are scored by generation 1's fitted network, not a refit one
    assert run_config["trust"]["init_args"]["checkpoint"] == str(gen1 / "trust" / "trust_function.pt")
    assert (gen2 / "trust" / "trust_function.pt").read_bytes() != b""


def test_trust_overrides_per_generation():
    from w2s.chain import trust_overrides

    refit = {"trust": "refit", "features": [["0:prompt_mean"], ["hidden", "1:produced"]]}
    assert trust_overrides(refit, 2, Path("g1")) == ["--trust.init_args.features", '["hidden", "1:produced"]']
    assert trust_overrides({"trust": "refit", "features": None}, 2, Path("g1")) == []
    reuse = {"trust": "reuse", "features": None}
    assert trust_overrides(reuse, 1, Path("g1")) == []
    assert trust_overrides(reuse, 3, Path("g1")) == ["--trust.init_args.checkpoint",
                                                     str(Path("g1/trust/trust_function.pt"))]


@pytest.mark.parametrize("chain,message", [
    ({"students": ["a", "b"], "trust": "keep"}, "chain.trust is 'keep'"),
    ({"students": ["a", "b"], "features": [["hidden"]]}, "one non-empty list of feature names per generation"),
    ({"students": ["a", "b"], "trust": "reuse", "features": [["hidden"], ["hidden"]]}, "do not go together"),
    ({"students": ["a"], "colapse_margin": 0.1}, "unknown chain option"),
])
def test_chain_block_is_checked(tmp_path, chain, message):
    from w2s.chain import read_config
    from w2s.errors import W2SError

    config = {"base": str(ROOT / "configs" / "toy_chain.yaml"), "chain": chain}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(W2SError, match=message):
        read_config(tmp_path / "c.yaml", [])
    config["trust"] = {"class_path": "trust_functions.Entropy"}  # saves nothing to reuse
    config["chain"] = {"students": ["a", "b"], "trust": "reuse"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(W2SError, match="reuse needs a trust function that saves and reloads"):
        read_config(tmp_path / "c.yaml", [])


def test_chain_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "no_chain.yaml"
    bad.write_text((ROOT / "configs" / "toy.yaml").read_text())
    proc = run_cli("chain", "--config", str(bad), cwd=tmp_path)
    message = error_message(proc.stderr)
    assert proc.returncode == 2 and "\n" not in message and "has no chain: block with a students: list" in message


@pytest.mark.parametrize("previous,current,stops", [
    ({"purity@n": 0.9, "student accuracy": 0.8}, {"purity@n": 0.85, "student accuracy": 0.82}, False),
    ({"purity@n": 0.9, "student accuracy": 0.8}, {"purity@n": 0.7, "student accuracy": 0.82}, True),
    ({"purity@n": 0.9, "student accuracy": 0.8}, {"purity@n": 0.9, "student accuracy": 0.6}, True),
])
def test_collapse_guard(previous, current, stops):
    from w2s.chain import collapsed

    assert (collapsed(previous, current, 0.1) is not None) is stops
