"""examples/task_seq2seq_autotitle.py --tiny: UniLM title generation end to end."""

import importlib
import pathlib
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def test_autotitle_tiny_trains_generates_and_caches_consistently():
    example = load_example("task_seq2seq_autotitle")
    results = example.main(["--tiny"])

    # The title loss fell well below its start (ln(13584) = 9.5 for a random model).
    losses = results["losses"]
    assert losses[0] > 8.0 and losses[-1] < 0.8 * losses[0], losses

    # Four dev titles, each decoded from its own ids, 6 to 12 ids, closed by [SEP] or cut
    # at the limit, made of ordinary tokens.
    samples = results["samples"]
    assert len(samples) == 4 and not results["invalid_titles"]
    dev = example.read_pairs(example.DATA / "autotitle" / "dev.tsv")
    vocab = example.Tokenizer(
        example.load_vocab(
            example.tiny_vocab("zh"),
            simplified=True,
            startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
        )[0],
        do_lower_case=True,
    )
    sep = vocab.token_to_id("[SEP]")
    for sample, (title, content) in zip(samples, dev):
        assert (sample["title"], sample["content"]) == (title, content)
        ids = sample["ids"]
        assert 6 <= len(ids) <= 12
        assert ids[-1] == sep or len(ids) == 12
        body = vocab.ids_to_tokens(ids[:-1] if ids[-1] == sep else ids)
        assert body and not any(t.startswith("[") and t.endswith("]") for t in body)
        assert sample["generated"] == vocab.decode(ids) and sample["generated"]
        # The reported ROUGE-L is the LCS F1 of the strings it printed.
        assert 0.0 <= example.rouge_l(sample["generated"], title) <= 1.0

    # Key/value-cached beam search gave exactly the ids of full recomputation, every time.
    assert results["num_checked"] == 4 and results["cache_mismatches"] == []
    # The cached steps compile per batch size and chunk width, never per step or title:
    # the contents (one row, <= 32 tokens) take widths among 1, 2, 4, ..., 32, and the
    # one-token steps batch sizes 1 or 2 (beam 2), while 4 titles of >= 6 ids took >= 24
    # steps.
    assert 2 <= results["step_compilations"] <= 6 + 2
    assert 0.0 <= results["rouge_l"] <= 1.0 and results["lead_rouge_l"] > 0.2


def test_rouge_l_and_title_checks():
    example = load_example("task_seq2seq_autotitle")
    assert example.rouge_l("城市公园", "城市公园") == 1.0
    assert example.rouge_l("", "城市") == 0.0
    # LCS "城园" (2): precision 2/3, recall 2/4 -> F1 4/7.
    assert abs(example.rouge_l("城X园", "城市公园") - 4 / 7) < 1e-12
    tokenizer = example.Tokenizer(
        {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "城": 4, "市": 5}, fast=False
    )
    assert example.title_problems([4, 5, 3], "城市", tokenizer, 1, 5) == []
    assert example.title_problems([4, 5, 4, 5, 4], "城市城市城", tokenizer, 1, 5) == []
    assert example.title_problems([3], "", tokenizer, 1, 5) == ["empty title"]
    assert "special tokens" in " ".join(example.title_problems([4, 2, 3], "城", tokenizer, 1, 5))
    assert "without [SEP]" in " ".join(example.title_problems([4, 5], "城市", tokenizer, 1, 5))
