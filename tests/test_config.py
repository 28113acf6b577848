"""Fine-tuning settings: checks, the defaults they fill in, and what a resume may change."""

from __future__ import annotations

import pytest

from zoo import ConfigError
from zoo.train.config import FinetuneConfig


def test_settings_are_recorded_as_given(tmp_path):
    config = FinetuneConfig("astro_cnn", str(tmp_path), "run", lr=0.01, epochs=7)
    assert config.strategy == "auto" and config.finetune_lr is None and config.patience is None
    assert config.data == str(tmp_path.resolve())
    assert FinetuneConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"strategy": "all"}, "--strategy must be one of auto, head, top, progressive, full"),
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"lr": -1.0}, "--lr must be a positive number, got -1.0"),
        ({"finetune_lr": float("inf")}, "--finetune-lr must be a positive number, got inf"),
        ({"dropout": 1.0}, "--dropout must be in \\[0, 1\\)"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        FinetuneConfig("astro_cnn", str(tmp_path), "run", **setting)


def test_resuming_keeps_the_recorded_settings_and_refuses_other_ones_by_name(tmp_path):
    recorded = FinetuneConfig("astro_cnn", str(tmp_path), "run", lr=0.01, hidden=(64,))
    resumed = recorded.resume_with({"epochs": 20, "out": "moved/run"})
    assert (resumed.lr, resumed.hidden, resumed.epochs) == (0.01, (64,), 20)
    assert resumed.resume and resumed.out == "moved/run"
    same = recorded.resume_with({"backbone": "astro_cnn", "hidden": (64,), "data": str(tmp_path)})
    assert same.hidden == (64,)
    with pytest.raises(ConfigError, match=r"other settings: hidden \[64\] \(asked \[32\]\), lr"):
        recorded.resume_with({"hidden": (32,), "lr": 0.5, "patience": 9})
