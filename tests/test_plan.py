"""What `auto` picks, and the defaults that follow from the strategy."""

from __future__ import annotations

import pytest

from zoo.train.config import FinetuneConfig
from zoo.train.plan import HEAD, SCRATCH, TUNE, make_plan


def config(tmp_path, **settings):
    return FinetuneConfig("astro_cnn", str(tmp_path), "run", **settings)


def test_auto_fine_tunes_a_pretrained_backbone(tmp_path):
    plan = make_plan(config(tmp_path), pretrained=True, weights="simulated", blocks=4)
    assert (plan.strategy, plan.unfreeze, plan.from_scratch) == ("top", 2, False)
    assert "pretrained weights (simulated)" in plan.reason and "top 2 block(s)" in plan.reason
    assert plan.head == HEAD
    assert plan.tune.lr == pytest.approx(HEAD.lr / 10) and plan.tune.epochs == TUNE.epochs
    assert plan.label_smoothing == 0 and not plan.reestimate_batch_norm


def test_auto_trains_from_scratch_without_weights(tmp_path):
    plan = make_plan(config(tmp_path), pretrained=False, weights=None, blocks=4)
    assert (plan.strategy, plan.from_scratch, plan.head) == ("full", True, None)
    assert plan.tune == SCRATCH and plan.reestimate_batch_norm
    assert plan.label_smoothing > 0 and plan.weight_decay == 0
    assert "from scratch" in plan.reason


def test_auto_on_a_pretrained_model_without_blocks_trains_a_head(tmp_path):
    plan = make_plan(config(tmp_path), pretrained=True, weights=None, blocks=0)
    assert plan.strategy == "head" and plan.tune is None and "a pretrained model" in plan.reason


def test_given_settings_win_and_the_warm_up_fits_in_the_phase(tmp_path):
    given = config(tmp_path, strategy="full", epochs=2, lr=0.01, patience=9, label_smoothing=0.0)
    plan = make_plan(given, pretrained=False, weights=None, blocks=4)
    assert (plan.tune.epochs, plan.tune.lr, plan.tune.patience) == (2, 0.01, 9)
    assert plan.tune.warmup_epochs == 1 and plan.label_smoothing == 0.0
    constant = make_plan(
        config(tmp_path, schedule="constant"), pretrained=False, weights=None, blocks=4
    )
    assert constant.tune.warmup_epochs == 0 and constant.tune.schedule == "constant"
    top = make_plan(
        config(tmp_path, strategy="top", finetune_lr=0.05), pretrained=True, weights="w", blocks=4
    )
    assert top.reason == "--strategy top" and top.tune.lr == 0.05


def test_auto_unfreezes_no_more_blocks_than_there_are(tmp_path):
    plan = make_plan(config(tmp_path), pretrained=True, weights="imagenet", blocks=1)
    assert (plan.strategy, plan.unfreeze) == ("top", 1) and "top 1 block(s)" in plan.reason
