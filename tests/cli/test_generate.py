from __future__ import annotations

import re

import pytest

from fastv.cli import main
from fastv.families.llava.selfcheck import tiny_llava
from fastv.loading import build_inputs, load_model, open_image
from fastv.selfcheck.tiny import IMAGE_TOKEN
from tests.tiny_processor import save_tiny_llava, write_image


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-llava")
    save_tiny_llava(tiny_llava(), directory)
    return directory


def test_processor_expands_the_image_placeholder(checkpoint, tmp_path):
    _, processor = load_model(str(checkpoint))
    inputs = build_inputs(processor, open_image(write_image(tmp_path / "x.png")), "what shape is this ?")
    assert int((inputs["input_ids"] == IMAGE_TOKEN).sum()) == 16
    assert processor.tokenizer.padding_side == "left"


def test_generate_prints_baseline_and_fastv(checkpoint, tmp_path, capsys):
    image = write_image(tmp_path / "x.png")
    code = main(
        [
            "generate",
            "--model",
            str(checkpoint),
            "--image",
            str(image),
            "--prompt",
            "what color is this ?",
            "--k",
            "2",
            "--ratio",
            "0.5",
            "--max-new-tokens",
            "4",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    n_prompt = 16 + 5
    assert f"baseline: kept {n_prompt}/{n_prompt} prompt tokens" in printed
    assert f"FastV(k=2, ratio=0.5, rank=last_token): kept {n_prompt - 8}/{n_prompt} prompt tokens" in printed
    assert re.search(r"speedup \(end-to-end generate\): \d+\.\d\dx", printed)


def test_generate_rejects_an_out_of_range_ratio(checkpoint, tmp_path, capsys):
    image = write_image(tmp_path / "x.png")
    with pytest.raises(SystemExit) as stopped:  # refused while parsing: before the model loads
        main(["generate", "--model", str(checkpoint), "--image", str(image), "--prompt", "x", "--ratio", "1.5"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "fastv generate: error: argument --ratio: expected a number in [0, 1), got '1.5' (see fastv generate --help)\n"
    )
