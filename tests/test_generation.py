"""kerasbert.generation: cached greedy / beam / sampling equal HF's greedy goldens and the same
decoders recomputing the whole prefix each step; compilations stay bounded; bad arguments."""

import numpy as np
import pytest
from conftest import FIXTURES, goldens

import kerasbert
from kerasbert.errors import ConfigError
from kerasbert.generation import CachedLMGenerator, generate, incremental_model
from kerasbert.snippets import AutoRegressiveDecoder
from kerasbert.snippets.decoders import LastTokenModel

HF = FIXTURES / "gpt2_tiny" / "hf"


@pytest.fixture(scope="module")
def g():
    return goldens(FIXTURES / "gpt2_tiny")


@pytest.fixture(scope="module")
def builder():
    """The tiny HF GPT-2 (probabilities out, bert4keras's default)."""
    return kerasbert.build_transformer_model(
        HF / "config.json", HF / "model.safetensors", return_keras_model=False
    )


def _prompt(g, row):
    return g["token_ids"][row, : int(g["lengths"][row])]


class Uncached(AutoRegressiveDecoder):
    """bert4keras's way: the whole prefix through the model at every step."""

    def __init__(self, model, **kwargs):
        super().__init__(start_id=None, **kwargs)
        self.model = model

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        return self.last_token(self.model).predict(np.concatenate([inputs[0], output_ids], 1))


def _full_greedy(model, prompt, steps):
    """Greedy ids by running the whole prefix each step (the reference; LastTokenModel pads
    the prefixes to a few lengths, so this compiles a few programs, not one per step)."""
    last = LastTokenModel(model)
    ids = list(prompt)
    for _ in range(steps):
        ids.append(int(last.predict(np.array([ids])).argmax()))
    return ids[len(prompt) :]


# -- greedy ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("final_activation", ["softmax", "linear"])
def test_greedy_equals_hf_generate(g, final_activation):
    builder = kerasbert.build_transformer_model(
        HF / "config.json", HF / "model.safetensors", final_activation=final_activation,
        return_keras_model=False,
    )  # fmt: skip
    new = generate(builder, _prompt(g, 0), len(g["greedy_tokens"]))
    assert new.tolist() == g["greedy_tokens"].tolist()
    beam = generate(builder, list(_prompt(g, 0)), len(g["greedy_tokens"]), "beam", num_beams=1)
    assert beam.tolist() == g["greedy_tokens"].tolist()


def test_greedy_batch_of_prompts_of_different_lengths(builder, g):
    prompts = [_prompt(g, row) for row in range(3)]  # 12, 9 and 5 ids
    assert sorted({len(p) for p in prompts}) == [5, 9, 12]
    batch = generate(builder, prompts, 10)
    for prompt, new in zip(prompts, batch):
        assert new.tolist() == generate(builder, prompt, 10).tolist()
        assert new.tolist() == _full_greedy(builder.model, prompt, 10)
    # end_id: a row stops after it (kept), the others run on.
    end_id = int(batch[1][3])
    ended = generate(builder, prompts, 10, end_id=end_id)
    for new, full in zip(ended, batch):
        stop = full.tolist().index(end_id) + 1 if end_id in full.tolist() else len(full)
        assert new.tolist() == full[:stop].tolist()
    assert len(ended[1]) <= 4


# -- beam search and sampling against a full recompute --------------------------------------------
@pytest.mark.parametrize("end_id", [None, 34])
def test_beam_search_with_the_cache_equals_the_full_recompute(builder, g, end_id):
    prompt = [_prompt(g, 1)]
    for topk in (1, 3):
        cached = CachedLMGenerator(builder, end_id=end_id, maxlen=12).beam_search(prompt, topk)
        full = Uncached(builder.model, end_id=end_id, maxlen=12).beam_search(prompt, topk)
        assert cached.tolist() == full.tolist()
    assert generate(builder, prompt[0], 12, "beam", num_beams=3, end_id=end_id).tolist() == (
        cached.tolist()
    )


@pytest.mark.parametrize(
    "options", [{"topk": 5}, {"topp": 0.8}, {"topk": 10, "topp": 0.9, "temperature": 0.7}]
)
def test_sampling_with_the_cache_equals_the_full_recompute(builder, g, options):
    prompt = [_prompt(g, 2)]
    cached = CachedLMGenerator(builder, end_id=34, maxlen=10).random_sample(
        prompt, 3, rng=np.random.default_rng(7), **options
    )
    full = Uncached(builder.model, end_id=34, maxlen=10).random_sample(
        prompt, 3, rng=np.random.default_rng(7), **options
    )
    assert [x.tolist() for x in cached] == [x.tolist() for x in full]
    one = generate(builder, prompt[0], 10, "sample", end_id=34, seed=7, **options)
    again = generate(builder, prompt[0], 10, "sample", end_id=34, seed=7, **options)
    assert one.tolist() == again.tolist() and 1 <= len(one) <= 10


def test_unilm_bert_beam_search_equals_the_full_recompute():
    """A UniLM BERT: the source is segment 0, generated ids segment 1."""
    config = {"vocab_size": 30, "hidden_size": 16, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 24,
              "initializer_range": 0.3}  # fmt: skip
    unilm = kerasbert.build_transformer_model(
        config, application="unilm", with_mlm=True, return_keras_model=False
    )

    class UncachedUnilm(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            ids = np.concatenate([inputs[0], output_ids], 1)
            segments = np.concatenate([inputs[1], np.ones_like(output_ids)], 1)
            return self.last_token(unilm.model).predict([ids, segments])

    source = [np.array([2, 5, 9, 11, 3], "int32"), np.zeros(5, "int32")]
    for topk in (1, 3):
        cached = CachedLMGenerator(unilm, end_id=3, maxlen=6).beam_search(source, topk)
        full = UncachedUnilm(start_id=None, end_id=3, maxlen=6).beam_search(source, topk)
        assert cached.tolist() == full.tolist()


# -- compilations ---------------------------------------------------------------------------------
def test_one_compilation_per_batch_size_and_width():
    builder = kerasbert.build_transformer_model(
        HF / "config.json", HF / "model.safetensors", return_keras_model=False
    )  # its own steps: nothing compiled before
    rng = np.random.default_rng(3)

    def prompts(batch, length):
        return rng.integers(1, 100, size=(batch, length))

    generate(builder, prompts(2, 10), 8)  # warm-up: a 32-position cache, widths 16 and 1
    step = incremental_model(builder, 32)
    warm = step.num_compilations
    assert warm == 2
    generate(builder, prompts(2, 12), 15)  # more steps, another prompt length of width 16
    generate(builder, prompts(2, 9), 3)
    assert step.num_compilations == warm
    assert step._function._cache_size() == warm  # the jitted function's own executables
    generate(builder, prompts(3, 10), 8)  # a new batch size compiles both again
    assert step.num_compilations == warm + 2
    # Beam search: one more row count (the beams); another prompt of the same width and
    # more steps compile nothing after that.
    generator = CachedLMGenerator(builder, maxlen=8)
    generator.beam_search([prompts(1, 10)[0]], topk=2)
    warm = step.num_compilations
    generator.beam_search([prompts(1, 13)[0]], topk=2)
    CachedLMGenerator(builder, maxlen=16).beam_search([prompts(1, 11)[0]], topk=2)
    assert step.num_compilations == warm == step._function._cache_size()


# -- bad arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "top"}, "method must be one of"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive int"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be a positive int"),
        ({"method": "beam", "num_beams": 0}, "num_beams must be a positive int"),
        ({"method": "sample", "topk": -1}, "topk must be a positive int"),
        ({"method": "sample", "topp": 1.5}, r"topp must be a number in \(0, 1\]"),
        ({"method": "sample", "temperature": 0}, "temperature must be a positive number"),
        ({"prompt_ids": "hello"}, "prompt_ids must be a sequence of int token ids"),
        ({"prompt_ids": [1.5, 2.0]}, "prompt_ids must be a sequence of int token ids"),
        ({"prompt_ids": []}, "prompt_ids must hold at least one id"),
        ({"prompt_ids": [[1, 2], []]}, "prompt_ids must hold at least one id"),
        ({"prompt_ids": [[1, 2], [3]], "method": "beam"}, "takes one prompt per call"),
        ({"prompt_ids": [[1, 2], [3]], "method": "sample"}, "takes one prompt per call"),
        ({"max_new_tokens": 30}, "need 33 positions; the model has 32"),
        ({"method": "beam", "max_new_tokens": 30}, "maxlen=30 new ids need 33 positions"),
    ],
)
def test_bad_arguments_are_config_errors(builder, kwargs, match):
    arguments = {"prompt_ids": [5, 6, 7], "max_new_tokens": 4, **kwargs}
    with pytest.raises(ConfigError, match=match):
        generate(builder, **arguments)


def test_models_without_an_lm_are_refused():
    config = {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 16}  # fmt: skip
    encoder = kerasbert.build_transformer_model(config, return_keras_model=False)
    with pytest.raises(ConfigError, match="application='lm' or 'unilm'"):
        generate(encoder, [2, 3], 2)
    with pytest.raises(ConfigError, match="maxlen must be a positive int"):
        CachedLMGenerator(
            kerasbert.build_transformer_model(
                config, application="lm", with_mlm=True, return_keras_model=False
            ),
            maxlen=0,
        )
