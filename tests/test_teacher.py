import datasets
import numpy as np
import pytest
import torch

from w2s.errors import W2SError
from w2s.models import load_causal_lm, load_tokenizer
from w2s.tasks import LocalMultipleChoice
from w2s.teacher import Teacher, load_outputs, save_outputs


@pytest.fixture(scope="module")
def mixed_split(tiny_world):
    """Source and target questions together: two templates, so prompts differ in length and get left padding."""
    data = datasets.load_from_disk(tiny_world / "data")
    return datasets.concatenate_datasets([data["source"].select(range(12)), data["target"].select(range(12))])


@pytest.fixture(scope="module")
def teacher_model(tiny_world):
    return load_causal_lm(str(tiny_world / "teacher")), load_tokenizer(str(tiny_world / "teacher"))


def _run(teacher_model, split, **kwargs):
    model, tokenizer = teacher_model
    return Teacher("unused", **kwargs).run(model, tokenizer, LocalMultipleChoice(""), split)


@pytest.mark.parametrize("position,offset", [("produced", 0), ("appended", 1)])
def test_hidden_state_equals_plain_unpadded_forward(teacher_model, mixed_split, position, offset):
    model, tokenizer = teacher_model
    out = _run(teacher_model, mixed_split, batch_size=8, max_new_tokens=2, position=position)
    task = LocalMultipleChoice("")
    for i in (0, 5, 13, 23):
        prompt = tokenizer(task.prompt(mixed_split[i]), return_tensors="pt").input_ids
        generated = tokenizer(out.generations[i], add_special_tokens=False, return_tensors="pt").input_ids
        ids = torch.cat([prompt, generated], 1)
        with torch.no_grad():
            states = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
        # the final generated token sits at index len(ids)-1; the state that produced it one position earlier
        expected = states[ids.shape[1] - 2 + offset]
        assert np.allclose(out.hidden[i], expected.numpy(), atol=1e-4)


def test_left_padding_and_batching_change_nothing(teacher_model, mixed_split):
    single = _run(teacher_model, mixed_split, batch_size=1)
    batched = _run(teacher_model, mixed_split, batch_size=24)
    assert single.weak_labels == batched.weak_labels
    assert np.allclose(single.hidden, batched.hidden, atol=1e-4)
    assert np.allclose(single.option_logprobs, batched.option_logprobs, atol=1e-4)


@pytest.mark.parametrize("position", ["produced", "appended"])
def test_the_one_token_pass_is_one_forward_with_generates_result(teacher_model, mixed_split, monkeypatch, position):
    """With one new token and a plain greedy generation config the pass runs one forward pass instead of
    ``generate``: every output (weak labels, states, features, log-probabilities, entropy) is generate's."""
    import w2s.teacher
    from w2s.scoring import plain_greedy

    model, _ = teacher_model
    assert plain_greedy(model)
    features = ["0:prompt_mean", "1:produced", "-1:prompt_last"]
    fast = _run(teacher_model, mixed_split, batch_size=8, position=position, features=features)
    monkeypatch.setattr(w2s.teacher, "plain_greedy", lambda model: False)
    slow = _run(teacher_model, mixed_split, batch_size=8, position=position, features=features)
    assert fast.weak_labels == slow.weak_labels and fast.generations == slow.generations
    for name in ("hidden", "option_logprobs", "token_logprobs", "token_entropy"):
        assert np.allclose(getattr(fast, name), getattr(slow, name), atol=1e-5), name
    for name in features:
        assert np.allclose(fast.features[name], slow.features[name], atol=1e-5), name


def test_a_generation_config_with_a_logits_processor_goes_through_generate(teacher_model):
    from w2s.scoring import plain_greedy

    model, _ = teacher_model
    config = model.generation_config
    before = config.repetition_penalty
    try:
        config.repetition_penalty = 1.3  # changes the greedy choice: only generate applies it
        assert not plain_greedy(model)
    finally:
        config.repetition_penalty = before
    assert plain_greedy(model)


def test_outputs_are_consistent(teacher_model, mixed_split):
    out = _run(teacher_model, mixed_split, batch_size=8)
    assert len(out) == len(mixed_split) and out.hidden.shape == (len(mixed_split), 32)
    assert out.option_logprobs.shape == (len(mixed_split), 4) and (out.option_logprobs <= 0).all()
    expected = [w == a for w, a in zip(out.weak_labels, mixed_split["answer"])]
    assert out.correct.tolist() == expected
    # the greedy weak label is the option with the highest log-prob (the teacher only answers letters)
    letters = np.array(list("ABCD"))[out.option_logprobs.argmax(1)]
    assert [w for w in out.weak_labels] == letters.tolist()


def test_cache_is_reused_and_keyed(tiny_world, cache_root, monkeypatch):
    task = LocalMultipleChoice(str(tiny_world / "data"))
    splits = task.load()
    teacher = Teacher(str(tiny_world / "teacher"), batch_size=16)
    first = teacher.label(task, {"source": splits["source"]})["source"]
    monkeypatch.setattr("w2s.teacher.load_causal_lm", lambda *a, **k: pytest.fail("cache miss"))
    again = teacher.label(task, {"source": splits["source"]})["source"]
    assert np.array_equal(np.asarray(first.hidden), np.asarray(again.hidden)) and first.ids == again.ids
    key = teacher.cache_key(task, splits["source"])
    assert Teacher(str(tiny_world / "teacher"), batch_size=16, layer=0).cache_key(task, splits["source"]) != key
    assert Teacher(str(tiny_world / "student")).cache_key(task, splits["source"]) != key


def test_corrupt_cache_names_itself(teacher_model, mixed_split, tmp_path):
    out = _run(teacher_model, mixed_split, batch_size=8)
    save_outputs(out, tmp_path / "c", {"key": "k"})
    assert load_outputs(tmp_path / "c").weak_labels == out.weak_labels
    (tmp_path / "c" / "hidden.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(W2SError, match="corrupt.*delete that directory"):
        load_outputs(tmp_path / "c")


@pytest.mark.parametrize("max_new_tokens", [1, 2])  # one forward pass, generate
def test_nan_hidden_states_are_refused(teacher_model, mixed_split, monkeypatch, max_new_tokens):
    import w2s.teacher

    model, _ = teacher_model

    def poison(run):
        def poisoned(*args, **kwargs):
            out = run(*args, **kwargs)
            out.hidden_states[0][-1][0, -1, 0] = float("nan")
            return out
        return poisoned

    monkeypatch.setattr(model, "generate", poison(model.generate))
    monkeypatch.setattr(w2s.teacher, "greedy_one_token", poison(w2s.teacher.greedy_one_token))
    with pytest.raises(W2SError, match="NaN/Inf"):
        _run(teacher_model, mixed_split, batch_size=8, max_new_tokens=max_new_tokens)


def test_extra_features_equal_a_plain_forward(teacher_model, mixed_split):
    model, tokenizer = teacher_model
    out = _run(teacher_model, mixed_split, batch_size=8, features=["0:produced", "-1:prompt_mean", "1:prompt_last"])
    assert set(out.features) == {"0:produced", "-1:prompt_mean", "1:prompt_last"}
    task = LocalMultipleChoice("")
    for i in (0, 13, 23):
        ids = tokenizer(task.prompt(mixed_split[i]), return_tensors="pt").input_ids
        with torch.no_grad():
            states = model(input_ids=ids, output_hidden_states=True).hidden_states
        assert np.allclose(out.features["0:produced"][i], states[0][0, -1].numpy(), atol=1e-4)
        assert np.allclose(out.features["-1:prompt_mean"][i], states[-1][0].mean(0).numpy(), atol=1e-4)
        assert np.allclose(out.features["1:prompt_last"][i], states[1][0, -1].numpy(), atol=1e-4)


def test_features_survive_the_cache_and_change_its_key(tiny_world, cache_root, monkeypatch):
    task = LocalMultipleChoice(str(tiny_world / "data"))
    split = task.load()["source"]
    teacher = Teacher(str(tiny_world / "teacher"), batch_size=16, features=["-1:prompt_mean"])
    assert teacher.cache_key(task, split) != Teacher(str(tiny_world / "teacher"), batch_size=16).cache_key(task, split)
    first = teacher.label(task, {"source": split})["source"]
    monkeypatch.setattr("w2s.teacher.load_causal_lm", lambda *a, **k: pytest.fail("cache miss"))
    again = teacher.label(task, {"source": split})["source"]
    assert np.array_equal(np.asarray(first.features["-1:prompt_mean"]), np.asarray(again.features["-1:prompt_mean"]))


@pytest.mark.parametrize("feature,match", [("last:produced", "not '<layer>:<pooling>'"),
                                           ("1:max", "not '<layer>:<pooling>'"), ("7:produced", "layer 7 does not")])
def test_bad_feature_names_are_clear(teacher_model, mixed_split, feature, match):
    with pytest.raises(W2SError, match=match):
        _run(teacher_model, mixed_split, features=[feature])


def test_an_interrupted_pass_resumes_from_its_finished_shards(tiny_world, cache_root, monkeypatch):
    """Shards are saved as they finish: after a crash on the third shard, the rerun computes only the rest,
    and the assembled outputs equal an uninterrupted pass."""
    task = LocalMultipleChoice(str(tiny_world / "data"))
    split = task.load()["source"].select(range(50))
    calls = []
    real_run = Teacher.run

    def crashing_run(self, *args, **kwargs):
        calls.append(len(args[3]))
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a killed job looks like to the code after it
        return real_run(self, *args, **kwargs)

    teacher = Teacher(str(tiny_world / "teacher"), batch_size=4, shard_size=16, features=["1:produced"])
    monkeypatch.setattr(Teacher, "run", crashing_run)
    with pytest.raises(KeyboardInterrupt):
        teacher.label(task, {"resume": split})
    calls.clear()
    monkeypatch.setattr(Teacher, "run", lambda self, *a, **k: calls.append(len(a[3])) or real_run(self, *a, **k))
    resumed = teacher.label(task, {"resume": split})["resume"]
    assert calls == [16, 2]  # shards 3 and 4 only (50 = 16 + 16 + 16 + 2)
    assert not list((cache_root / "teacher").glob("*.partial"))
    model, tokenizer = load_causal_lm(str(tiny_world / "teacher")), load_tokenizer(str(tiny_world / "teacher"))
    whole = Teacher("unused", batch_size=4, features=["1:produced"]).run(model, tokenizer, task, split)
    assert resumed.ids == whole.ids and resumed.weak_labels == whole.weak_labels
    np.testing.assert_allclose(resumed.hidden, whole.hidden, atol=1e-5)
    np.testing.assert_allclose(resumed.features["1:produced"], whole.features["1:produced"], atol=1e-5)


def test_a_cache_written_for_another_pass_is_refused(tiny_world, cache_root):
    task = LocalMultipleChoice(str(tiny_world / "data"))
    split = task.load()["source"].select(range(10))
    teacher = Teacher(str(tiny_world / "teacher"), batch_size=8)
    teacher.label(task, {"source": split})
    path = cache_root / "teacher" / teacher.cache_key(task, split)
    with pytest.raises(W2SError, match="another teacher pass"):
        load_outputs(path, key="0123456789abcdef")


def test_hub_ids_are_keyed_by_their_cached_revision(tmp_path, monkeypatch):
    """A checkpoint updated on the hub (a new snapshot commit in the local HF cache) gets a new cache key."""
    from w2s.teacher import model_fingerprint

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--tiny"
    for commit in ("a" * 40, "b" * 40):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    assert model_fingerprint("org/uncached") == {"hub_id": "org/uncached", "revision": None}
    (repo / "refs" / "main").write_text("a" * 40)
    first = model_fingerprint("org/tiny")
    (repo / "refs" / "main").write_text("b" * 40)
    assert first == {"hub_id": "org/tiny", "revision": "a" * 40} != model_fingerprint("org/tiny")
