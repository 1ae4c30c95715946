"""Presets and overrides (moog_lib.configs)."""

import math

import pytest

from moog_lib import configs


@pytest.mark.parametrize("name", configs.PRESETS)
def test_presets_are_consistent(name):
    config = configs.get(name)
    assert config.name == name
    stride = math.prod(config.model.encoder_strides)
    assert config.data.resolution % stride == 0
    assert config.data.resolution % config.model.train_subsample == 0
    assert config.model.compute_dtype == ("bfloat16" if name in configs.TPU_PRESETS else "float32")


def test_paper_preset_is_the_paper():
    model = configs.get("paper").model
    assert (model.num_tokens, model.token_dim) == (1024, 512)
    assert model.encoder_features == (64, 128, 128, 256, 256, 512)
    assert model.encoder_strides == (1, 1, 1, 2, 1, 2)
    assert model.predictor == configs.TransformerConfig(3, 4, 256, 2048)
    assert model.corrector == configs.TransformerConfig(2, 8, 512, 2048)
    assert model.decoder == configs.TransformerConfig(6, 2, 128, 2048)
    assert (model.encoder_fourier_bases, model.decoder_fourier_bases) == (20, 16)
    assert not model.loss_gradient_input and model.state_stop_gradient_prob == 0.0
    train = configs.get("paper").train
    assert (train.peak_learning_rate, train.warmup_steps, train.final_learning_rate) == (1e-4, 1000, 1e-7)
    assert (train.b1, train.b2, train.grad_clip_norm, train.steps) == (0.9, 0.95, 1.0, 1_000_000)


def test_override_parses_and_type_checks():
    config = configs.override(
        configs.get("tiny"),
        ["model.num_tokens=8", "model.encoder_strides=[1, 2]", "model.compute_dtype=bfloat16",
         "train.peak_learning_rate=1"],
    )
    assert config.model.num_tokens == 8 and config.model.encoder_strides == (1, 2)
    assert config.model.compute_dtype == "bfloat16" and config.train.peak_learning_rate == 1.0
    with pytest.raises(ValueError, match="has no field 'nope'"):
        configs.override(config, ["model.nope=1"])
    with pytest.raises(ValueError, match="expects int"):
        configs.override(config, ["model.num_tokens=1.5"])
    with pytest.raises(ValueError, match="section"):
        configs.override(config, ["model.decoder=3"])
    with pytest.raises(ValueError, match="section.field=value"):
        configs.override(config, ["model.num_tokens"])
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        configs.get("huge")
