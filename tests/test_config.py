"""Config reading and its GELU semantics."""

import json

import pytest

from kerasbert.config import load_config
from kerasbert.errors import ConfigError

BASE = {
    "vocab_size": 10,
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 16,
}


def test_google_format_gelu_means_tanh(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(dict(BASE, hidden_act="gelu")))
    assert load_config(path)["hidden_act"] == "gelu_tanh"


@pytest.mark.parametrize("act,expected", [("gelu", "gelu_erf"), ("gelu_new", "gelu_tanh")])
def test_hf_format_follows_hf(act, expected):
    assert load_config(dict(BASE, hidden_act=act, model_type="bert"))["hidden_act"] == expected


def test_override_and_derived_keys():
    config = load_config(
        dict(BASE, hidden_act="gelu", max_position_embeddings=64, type_vocab_size=3,
             hidden_dropout_prob=0.2), hidden_act="gelu_erf",
    )  # fmt: skip
    assert config["hidden_act"] == "gelu_erf"
    assert config["max_position"] == 64
    assert config["segment_vocab_size"] == 3
    assert config["dropout_rate"] == 0.2
    assert config["layer_norm_eps"] == 1e-12


def test_folder_with_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(dict(BASE, model_type="bert")))
    assert load_config(tmp_path)["vocab_size"] == 10


@pytest.mark.parametrize(
    "config,message",
    [
        ({k: v for k, v in BASE.items() if k != "hidden_size"}, "lacks required key.*hidden_size"),
        (dict(BASE, num_hidden_layers=0), "positive integer"),
        (dict(BASE, hidden_act="mystery"), "Unsupported hidden_act"),
        (dict(BASE, hidden_dropout_prob=1.5), "hidden_dropout_prob.*< 1"),
    ],
)
def test_bad_configs(config, message):
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="No config.json"):
        load_config(tmp_path)
