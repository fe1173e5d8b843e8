"""Configs as deltas over a base, one parser for every command, the command face and the import order."""

import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, error_message, run_cli
from w2s.config import config_args, expand_configs, resolve_config
from w2s.errors import W2SError

CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))


def flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_resolves_with_the_fit_parser(name):
    path = ROOT / "configs" / name
    body = yaml.safe_load(path.read_text())
    body.pop("chain", None)  # the chain command's own block
    config = resolve_config(config_args(path, body))
    assert config["trust"]["class_path"] and config["data"]["teacher"]["init_args"]["model"]
    assert "base" not in config


def test_a_delta_changes_only_its_own_keys():
    base = flat(resolve_config(["--config", str(ROOT / "configs" / "toy.yaml")]))
    plain = flat(resolve_config(["--config", str(ROOT / "configs" / "toy_plain.yaml")]))
    changed = {k for k in base.keys() | plain.keys() if base.get(k) != plain.get(k)}
    assert changed == {"data.task.init_args.world", "data.teacher.init_args.model", "model.init_args.model",
                       "trainer.logger.init_args.name"}
    assert plain["data.task.init_args.world"] == "plain" and plain["model.init_args.model"] == "toy:plain-0/student"


def test_bases_chain_and_overrides_come_last():
    config = resolve_config(["--config", str(ROOT / "configs" / "ntf_olmo2_1b_13b.yaml"), "--data.batch_size", "4"])
    assert config["model"]["init_args"]["model"] == "allenai/OLMo-2-1124-13B"  # its own
    assert config["data"]["teacher"]["init_args"]["model"] == "allenai/OLMo-2-0425-1B"  # from ntf_olmo2_1b_7b
    assert "sciq:test" in config["data"]["task"]["init_args"]["test"]  # from ntf_avg5
    assert config["data"]["task"]["init_args"]["source"] == "mmlu:test[:50%]"  # from ntf_mmlu
    assert config["data"]["batch_size"] == 4


def test_expanding_a_delta_puts_its_base_first(tmp_path):
    (tmp_path / "d.yaml").write_text("base: ../configs_copy/toy.yaml\nseed_everything: 3\n")
    (tmp_path.parent / "configs_copy").mkdir(exist_ok=True)
    (tmp_path.parent / "configs_copy" / "toy.yaml").write_text((ROOT / "configs" / "toy.yaml").read_text())
    args = expand_configs(["fit", "--config", str(tmp_path / "d.yaml"), "--seed_everything", "4"])
    assert args[:3] == ["fit", "--config", str((tmp_path.parent / "configs_copy" / "toy.yaml").resolve())]
    assert yaml.safe_load(args[4]) == {"seed_everything": 3} and args[5:] == ["--seed_everything", "4"]


@pytest.mark.parametrize("text,message", [
    ("base: nowhere.yaml\n", "its base nowhere.yaml"),
    ("base: c.yaml\n", "cycle of base: files"),
    ("- a list\n", "must be a mapping of keys"),
    ("base: [unclosed\n", "is not valid YAML"),
])
def test_a_bad_base_is_one_error(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(W2SError, match=message):
        expand_configs(["--config", str(tmp_path / "c.yaml")])


def test_a_bad_base_through_main_is_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text("base: nowhere.yaml\n")
    proc = run_cli("fit", "--config", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and "its base nowhere.yaml" in error_message(proc.stderr)
    assert "Traceback" not in proc.stderr


def test_help_lists_every_command_and_predict_is_not_offered(tmp_path):
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("fit", "validate", "test", "compare", "chain"):
        assert f"\n  {command} " in proc.stdout
    proc = run_cli("predict", "--config", str(ROOT / "configs" / "toy.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'predict'" in proc.stderr and "Traceback" not in proc.stderr


def test_importing_a_trust_function_imports_neither_transformers_nor_lightning():
    code = ("import sys, trust_functions.base, trust_functions\n"
            "assert 'transformers' not in sys.modules and 'lightning' not in sys.modules, 'heavy import'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
