"""The path real users take: a checkpoint on disk, loaded with from_pretrained, then patched."""

from __future__ import annotations

import torch
from transformers import AutoModelForImageTextToText

import fastv
from fastv.selfcheck.tiny import prompt_ids


def test_saved_checkpoint_loads_and_prunes_like_the_in_memory_model(llava, tmp_path):
    llava.model.save_pretrained(tmp_path)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    assert type(loaded).__name__ == "LlavaForConditionalGeneration"
    ids = prompt_ids(4, [llava.image_tokens], 4)[None]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": llava.pixel_values(1)}
    outputs = []
    for model in (llava.model, loaded):
        fastv.apply(model, fastv.FastVConfig(k=2, ratio=0.5))
        outputs.append(model.generate(**inputs, max_new_tokens=5, do_sample=False))
        outputs.append(fastv.last_keep(model)[0])
    assert torch.equal(outputs[0], outputs[2])
    assert torch.equal(outputs[1], outputs[3])
    assert outputs[1].numel() == ids.shape[1] - llava.image_tokens // 2
