"""Confusion matrix → IoU on hand-built cases, and training-config handling."""

import math

import numpy as np
import pytest
import torch

from narrow_seg_ros.training.config import load_config, milestones
from narrow_seg_ros.training.metrics import ConfusionMatrix, format_iou_table
from narrow_seg_ros.training.optim import lr_factor, param_groups


def test_hand_built_confusion_matrix():
    # 3 classes. gt:   0 0 0 1 1 2 255
    #            pred: 0 0 1 1 2 2 0     (the ignored pixel never counts)
    gt = torch.tensor([0, 0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    np.testing.assert_array_equal(cm.counts, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    # IoU_0 = 2 / (3 + 2 - 2) = 2/3; IoU_1 = 1 / (2 + 2 - 1) = 1/3; IoU_2 = 1 / (1 + 2 - 1) = 1/2
    np.testing.assert_allclose(cm.iou(), [2 / 3, 1 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    # what each class is mistaken for: 0 → 1 (1 of 3 pixels), 1 → 2 (1 of 2), 2 never wrong
    mistaken = cm.summary(["a", "b", "c"])["mistaken_for"]
    assert mistaken == {
        "a": {"class": "b", "share": pytest.approx(1 / 3)},
        "b": {"class": "c", "share": 0.5},
        "c": None,
    }
    table = format_iou_table(cm.summary(["a", "b", "c"])).splitlines()
    assert table[1].endswith("b (33 % of its pixels)") and table[3].endswith("50.0")


def test_absent_class_is_excluded_and_accumulates():
    cm = ConfusionMatrix(4)
    cm.update(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [1, 0]]))
    cm.update(np.array([0]), np.array([0]))
    iou = cm.iou()
    assert math.isnan(iou[2]) and math.isnan(iou[3])  # never in gt nor pred
    assert iou[0] == pytest.approx(2 / 3) and iou[1] == pytest.approx(2 / 3)
    summary = cm.summary(["a", "b", "c", "d"])
    assert summary["per_class"]["c"] is None and summary["miou"] == pytest.approx(2 / 3)
    table = format_iou_table(summary)
    assert "mIoU" in table and "n/a" in table


def test_confusion_matrix_rejects_bad_labels():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([0]), torch.tensor([7]))
    with pytest.raises(ValueError, match="sizes differ"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0]))


def test_config_overrides_and_unknown_keys(tmp_path):
    cfg = load_config("config/train_ndnet45.yaml", {"train.iters": 100, "data.crop": [64, 64]})
    assert cfg["train"]["iters"] == 100 and cfg["optim"]["lr"] == 0.1
    assert milestones(cfg) == [35000, 60000]  # absolute in this config
    with pytest.raises(ValueError, match="unknown config key 'train.itters'"):
        load_config(None, {"train.itters": 5})
    for weighting in ("enet", "Log", True):
        with pytest.raises(ValueError, match="train.class_weights must be null or 'log'"):
            load_config(None, {"train.class_weights": weighting})
    for key, value in (("log_interval", 0), ("checkpoint_interval", 0), ("val_interval", -1), ("num_samples", 1.5)):
        with pytest.raises(ValueError, match=f"train.{key} must be an integer >= "):
            load_config(None, {f"train.{key}": value})
    assert load_config(None, {"train.val_interval": 0})["train"]["val_interval"] == 0  # no validation
    with pytest.raises(ValueError, match="data.num_workers must be an integer >= 0"):
        load_config(None, {"data.num_workers": -1})
    for lr in (-0.1, float("nan"), float("inf"), "0.1"):
        with pytest.raises(ValueError, match="optim.lr must be a finite number >= 0"):
            load_config(None, {"optim.lr": lr})
    for decay in (1.0, -0.1, True, "0.999"):
        with pytest.raises(ValueError, match="train.ema_decay must be null or in"):
            load_config(None, {"train.ema_decay": decay})
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {name: lbfgs}\n")
    with pytest.raises(ValueError, match="optim.name"):
        load_config(bad)


def test_step_and_poly_schedules():
    cfg = load_config(None, {"train.iters": 1000, "schedule.milestones": [0.4375, 0.75]})
    f = lr_factor(cfg)
    assert (f(0), f(436), f(437), f(749), f(750)) == (1.0, 1.0, 0.1, 0.1, pytest.approx(0.01))
    poly = lr_factor(load_config(None, {"train.iters": 100, "schedule.name": "poly"}))
    assert poly(0) == 1.0 and poly(50) == pytest.approx(0.5**0.9) and poly(100) == 0.0


def test_no_weight_decay_on_bn_and_bias():
    from narrow_seg_ros.models import build_model

    model = build_model("ndnet45")
    decay, no_decay = param_groups(model, 5e-4, True)
    assert all(p.ndim == 4 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0 and len(decay["params"]) + len(no_decay["params"]) == len(
        list(model.parameters())
    )
