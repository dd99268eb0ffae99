"""The Sort-of-CLEVR testbed: a LLaVA on the pretrained SmolLM2-135M, where pruning the wrong image
tokens costs accuracy. ``fastv eval --model clevr-smollm2 --data sortofclevr``."""

from fastv.testbed.assembly import ASSET_DIR, NAME, assemble, checkpoint_dir

__all__ = ["ASSET_DIR", "NAME", "assemble", "checkpoint_dir"]
