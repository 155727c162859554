"""examples/basic_gpt2_continuation.py: --tiny, and a GPT-2 model folder on disk."""

import importlib
import pathlib
import sys

import numpy as np

from kerasbert.snippets.decoders import LastTokenModel

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def test_gpt2_continuation_tiny():
    script = _example("basic_gpt2_continuation")
    out = script.main(["--tiny", "--max-new-tokens", "12"])
    assert out["prompts"] == script.PROMPTS and out["method"] == "greedy"
    last = LastTokenModel(out["builder"].model)  # a few padded lengths, not one per step
    for prompt_ids, new_ids in zip(out["prompt_ids"], out["new_ids"]):
        assert 1 <= len(new_ids) <= 12
        assert len(new_ids) == 12 or new_ids[-1] == out["end_id"]
        # Greedy: each new id is the argmax of the whole sequence so far.
        ids = list(prompt_ids)
        for new in new_ids:
            assert new == int(last.predict(np.array([ids])).argmax())
            ids.append(new)
    # One batch for three prompt lengths: the shortest prompt's width, then width 1.
    assert len({len(ids) for ids in out["prompt_ids"]}) == 3
    assert out["compilations"] == 2


def test_gpt2_continuation_from_a_model_folder(tmp_path):
    script = _example("basic_gpt2_continuation")
    folder = script.write_tiny_folder(tmp_path / "gpt2")
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "merges.txt", "model.safetensors", "vocab.json"
    ]  # fmt: skip
    argv = ["--model-dir", str(folder), "--text", "Hello world", "--max-new-tokens", "6"]
    greedy = script.main(argv)
    assert greedy["new_ids"] == script.main(["--tiny", *argv[2:]])["new_ids"]
    sampled = script.main([*argv, "--method", "sample", "--topp", "0.9", "--seed", "3"])
    assert 1 <= len(sampled["new_ids"][0]) <= 6 and sampled["compilations"] == 2
    beam = script.main([*argv, "--method", "beam", "--num-beams", "1"])
    assert beam["new_ids"] == greedy["new_ids"]
