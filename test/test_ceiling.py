"""The head ceiling: what the best low-resolution logits of a stride-s bilinear head can draw."""

import json

import torch
from conftest import make_weights
from test_training import cli, synth_root  # noqa: F401  (module fixtures)

from narrow_seg_ros.training.ceiling import best_mask, cell_fractions, head_ceiling


def _predict(target, grid, steps):
    return best_mask(target, 3, grid, True, steps)


def test_cell_fractions_count_each_class_share_and_skip_ignored_pixels():
    target = torch.zeros(4, 4, dtype=torch.long)
    target[:2, 2:] = 1
    target[3, 3] = 255
    frac = cell_fractions(target, 2, (2, 2))[0]
    assert torch.equal(frac[:, 0, 1], torch.tensor([0.0, 1.0]))
    assert torch.allclose(frac[:, 1, 1], torch.tensor([0.75, 0.0]))  # the ignored pixel counts for neither


def test_optimised_logits_draw_a_straight_boundary_between_samples():
    # Left/right halves split mid-cell: a blend of two logits moves the boundary anywhere.
    target = torch.zeros(32, 64, dtype=torch.long)
    target[:, 27:] = 1
    assert (_predict(target, (2, 4), 0) == target).float().mean() < 1
    assert torch.equal(_predict(target, (2, 4), 80), target)


def test_a_line_narrower_than_a_cell_is_drawn_only_where_the_grid_allows():
    # Bilinear logits are piecewise linear between samples: a class region along a row is an
    # interval around a sample, so a 1-pixel line far from every sample column cannot be drawn.
    target = torch.zeros(32, 64, dtype=torch.long)
    target[:, 10] = 2  # sample columns at align_corners: 0, 21, 42, 63
    pred = _predict(target, (2, 4), 80)
    line_iou = ((pred == 2) & (target == 2)).sum() / ((pred == 2) | (target == 2)).sum()
    assert line_iou < 0.5
    matrix = head_ceiling([(None, target.numpy())], 3, (2, 4), True, steps=80)
    assert matrix.iou()[0] > 0.9 and matrix.iou()[2] < 0.5


def test_ceiling_cli_json(synth_root, tmp_path, cli):  # noqa: F811
    weights = make_weights(tmp_path / "w.pt", input_size=(128, 256))
    proc = cli("ceiling", "--weights", str(weights), "--data", str(synth_root), "--steps", "20", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["low_res_grid"] == [4, 8] and result["input_size"] == [128, 256] and result["images"] == 4
    evaluated = json.loads(cli("eval", "--weights", str(weights), "--data", str(synth_root), "--json").stdout)
    # 4x8 logits for 128x256 scenes: the limit is low, and a random network far below it.
    assert 0.2 < result["miou"] < 1 and evaluated["miou"] < result["miou"] - 0.2
    assert cli("ceiling", "--weights", str(weights), "--data", str(synth_root), "--steps", "-1").returncode == 2
