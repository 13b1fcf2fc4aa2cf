"""Data → training → evaluation on small synthetic sets, with the real loader and trainer."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, start

from narrow_seg_ros.cli.main import main as cli_main
from narrow_seg_ros.data.cityscapes import CityscapesDataset
from narrow_seg_ros.models import build_model
from narrow_seg_ros.training.config import load_config
from narrow_seg_ros.training.evaluate import evaluate
from narrow_seg_ros.training.loop import train
from narrow_seg_ros.weights import load_weights, save_weights


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory, cli):
    root = tmp_path_factory.mktemp("synth")
    for split, num, seed in (("train", 8, 1), ("val", 4, 2)):
        proc = cli(
            "synth", "--out", str(root), "--num", str(num), "--size", "128x256", "--seed", str(seed), "--split", split
        )
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def cli():
    from conftest import run_cli

    return run_cli


def small_config(root, out, **extra):
    overrides = {
        "data.root": str(root),
        "data.crop": [128, 256],
        "data.scales": [1.0, 1.25],
        "data.num_workers": 0,
        "train.batch_size": 4,
        "train.out": str(out),
        "train.log_interval": 2,
        "train.checkpoint_interval": 1000,
        "train.val_interval": 0,
        "train.device": "cpu",
        "schedule.warmup_iters": 0,
    }
    overrides.update(extra)
    return load_config("config/train_ndnet45_synth.yaml", overrides)


def train_args(config, root, out, iters, crop, *extra, batch_size=None):
    """``narrow-seg train`` arguments for a small CPU run on ``root`` (no DataLoader workers,
    no validation), as a user would type them."""
    args = ["train", "--config", config, "--data", str(root), "--out", str(out), "--iters", str(iters)]
    args += ["--crop", crop, "--workers", "0", "--device", "cpu", "--val-interval", "0"]
    args += ["--batch-size", str(batch_size)] if batch_size else []
    return [*args, *extra]


@pytest.mark.parametrize(
    "rare_fraction, ema_decay", [(0.0, None), (0.5, None), (0.0, 0.9)], ids=["uniform", "rare-class-sampling", "ema"]
)
def test_resume_is_exact(synth_root, tmp_path, rare_fraction, ema_decay, capsys):
    """train 2N ≡ train N, stop, resume, train N more (model, optimizer, schedule, weight average)."""
    n = 3
    rare = {"data.rare_class_sampling": {"fraction": rare_fraction, "temperature": 0.01, "min_pixels": 16}}
    run = {"train.iters": 2 * n, "train.ema_decay": ema_decay, **rare}
    straight = small_config(synth_root, tmp_path / "a", **run)
    train(straight)
    assert ("rare-class sampling (50 % of samples)" in capsys.readouterr().out) == (rare_fraction > 0)
    paused = small_config(synth_root, tmp_path / "b", **run)
    train(paused, stop_at=n)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["iteration"] == n
    train(paused, resume=True)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 2 * n
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"]), key
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    assert ("ema" in a) == ("ema" in b) == (ema_decay is not None)
    for key, value in a.get("ema", {}).items():
        assert torch.equal(value, b["ema"][key]), key
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["2", "4", "6"]  # no duplicated rows after resume


def test_fine_tune_starts_from_weights_file(synth_root, tmp_path, capsys):
    """train.init_weights (--init-weights): the run starts from a deployment weights file, the aux
    head the file lacks starts fresh, base_size becomes the recorded input size, and a file for
    another model is refused before training starts; FCN32 weights start an FCN8 run."""
    train(small_config(synth_root, tmp_path / "stage1", **{"train.iters": 2}))
    stage1 = load_weights(tmp_path / "stage1" / "weights.pt")
    # lr 0: the parameters must come out exactly as they went in (BN running stats still move)
    stage2 = small_config(
        synth_root,
        tmp_path / "stage2",
        **{
            "train.iters": 1,
            "train.init_weights": str(tmp_path / "stage1" / "weights.pt"),
            "train.aux_weight": 0.4,
            "model.options": {"aux_head": True},
            "optim.lr": 0.0,
            "data.base_size": [256, 512],
        },
    )
    train(stage2)
    tuned = load_weights(tmp_path / "stage2" / "weights.pt")
    assert tuned.input_size == [256, 512] and stage1.input_size == [128, 256]
    params = [k for k in stage1.state_dict if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert params and all(torch.equal(stage1.state_dict[k], tuned.state_dict[k]) for k in params)

    other = small_config(
        synth_root,
        tmp_path / "other",
        **{"model.name": "ndnet29", "train.init_weights": str(tmp_path / "stage1" / "weights.pt")},
    )
    with pytest.raises(ValueError, match="a ndnet45 cannot start a ndnet29 run"):
        train(other)

    # FCN32 weights start an FCN8 run: the backbone and stride-32 head carry over, the skip heads
    # start fresh (zero classifiers); FCN8 weights cannot start an FCN32 run (its skips would be lost)
    fcn8 = {"train.iters": 1, "train.init_weights": str(tmp_path / "stage1" / "weights.pt"), "optim.lr": 0.0}
    train(small_config(synth_root, tmp_path / "fcn8", **fcn8, **{"model.options": {"head": "fcn8"}}))
    printed = capsys.readouterr().out
    assert f"initialised from {tmp_path / 'stage1' / 'weights.pt'}; classifier rows carried: road, sidewalk" in printed
    assert "heads starting fresh: skip16, skip8" in printed
    decoder = load_weights(tmp_path / "fcn8" / "weights.pt")
    assert decoder.model_options == {"head": "fcn8"} and decoder.build_model().output_stride == 8
    assert all(torch.equal(stage1.state_dict[k], decoder.state_dict[k]) for k in params)
    assert not decoder.state_dict["skip8.1.weight"].any() and "skip16.1.weight" in decoder.state_dict
    learning = {**fcn8, "optim.lr": 0.01, "train.iters": 2, "model.options": {"head": "fcn8"}}
    train(small_config(synth_root, tmp_path / "fcn8_lr", **learning))
    assert load_weights(tmp_path / "fcn8_lr" / "weights.pt").state_dict["skip8.1.weight"].abs().sum() > 0
    back = {**fcn8, "train.init_weights": str(tmp_path / "fcn8" / "weights.pt")}
    with pytest.raises(ValueError, match="layers the network lacks \\(skip16"):
        train(small_config(synth_root, tmp_path / "back", **back))


def test_ema_weights_file_holds_the_average(synth_root, tmp_path, capsys):
    """train.ema_decay d: after each step average ← d·average + (1 − d)·weights (the first step
    copies), for the parameters and the BN statistics; the weights file holds the average, and
    validation scores both in the same run."""
    d = 0.5
    out = tmp_path / "ema"
    extra = {"train.iters": 3, "train.ema_decay": d, "train.val_interval": 3, "data.val_max_images": 2}
    config = small_config(synth_root, out, **extra)
    raw = []  # the trained weights after steps 1, 2, 3
    for stop_at, resume in ((1, False), (2, True), (None, True)):
        train(config, resume=resume, stop_at=stop_at)
        state = torch.load(out / "checkpoint.pt", weights_only=True)
        raw.append(state["model"])
        if stop_at == 1:
            first = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
            assert all(torch.equal(first[k], v) for k, v in raw[0].items())
    weights = load_weights(out / "weights.pt")
    averaged = weights.state_dict
    floats = [k for k, v in raw[0].items() if v.is_floating_point()]
    assert any(k.endswith("running_mean") for k in floats) and len(floats) > 100
    for k in floats:
        expected = d * (d * raw[0][k] + (1 - d) * raw[1][k]) + (1 - d) * raw[2][k]
        torch.testing.assert_close(averaged[k], expected, rtol=0, atol=1e-6, msg=k)
    assert not all(torch.equal(averaged[k], raw[2][k]) for k in floats)
    counters = [k for k in raw[2] if k.endswith("num_batches_tracked")]
    assert counters and all(int(averaged[k]) == int(raw[2][k]) == 3 for k in counters)  # copied, not averaged
    # val.csv: "miou" is the weights file's score, "miou_raw" that of the raw weights
    header, row = (out / "val.csv").read_text().splitlines()
    assert header == "iteration,miou,pixel_accuracy,miou_raw" and row.startswith("3,")
    scored = dict(zip(header.split(","), map(float, row.split(","))))
    val_set = CityscapesDataset(str(synth_root), "val")
    raw_model = build_model("ndnet45", num_classes=19)
    raw_model.load_state_dict(raw[2])
    for network, column in ((weights.build_model(), "miou"), (raw_model, "miou_raw")):
        matrix = evaluate(network, val_set, 19, weights.mean, weights.std, weights.input_size, "cpu", 2)
        assert matrix.miou() == pytest.approx(scored[column], abs=1e-5), column
    assert weights.metadata["val_miou"] == pytest.approx(scored["miou"], abs=1e-5)
    # val_last.json: the last validation's per-class IoU and confusions, as a model card reports them
    last = json.loads((out / "val_last.json").read_text())
    assert last["iteration"] == 3 and last["miou"] == pytest.approx(scored["miou"], abs=1e-5)
    assert list(last["per_class"]) == val_set.class_names and set(last["mistaken_for"]) == set(last["per_class"])
    assert "(raw weights" in capsys.readouterr().out and (out / "curves.png").is_file()
    # narrow-seg extract-weights: the checkpoint's average is the weights file; --raw the trained weights
    for flags, expected, kind in (([], averaged, "average"), (["--raw"], raw[2], "raw")):
        assert cli_main(["extract-weights", str(out / "checkpoint.pt"), "--out", str(tmp_path / "pub.pt"), *flags]) == 0
        published = load_weights(tmp_path / "pub.pt")
        assert published.metadata["weights"] == kind and published.metadata["iterations"] == 3
        assert published.state_dict.keys() == expected.keys()
        assert all(torch.equal(published.state_dict[k], v) for k, v in expected.items())
        assert (published.model, published.input_size, published.mean) == (
            weights.model,
            weights.input_size,
            weights.mean,
        )
    assert f"raw weights of iteration 3 written to {tmp_path / 'pub.pt'}" in capsys.readouterr().out
    assert weights.metadata["weights"] == "average"
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for bad, message in (
        ("none.pt", "no checkpoint at"),
        ("junk.pt", "cannot read checkpoint"),
        ("pub.pt", "is a weights file already, not a training checkpoint"),
    ):
        assert cli_main(["extract-weights", str(tmp_path / bad), "--out", str(tmp_path / "x.pt")]) == 2
        error = capsys.readouterr().err
        assert error.startswith("narrow-seg extract-weights: error: ") and message in error, error
    # a fresh run in the same folder starts its own logs (no EMA column under the previous run's header)
    train(
        small_config(synth_root, out, **{**extra, "train.iters": 1, "train.ema_decay": None, "train.val_interval": 1})
    )
    assert cli_main(["extract-weights", str(out / "checkpoint.pt"), "--out", str(tmp_path / "pub.pt")]) == 0
    assert "raw weights of iteration 1 (the run keeps no weight average)" in capsys.readouterr().out
    assert (out / "val.csv").read_text().splitlines()[0] == "iteration,miou,pixel_accuracy"
    assert json.loads((out / "val_last.json").read_text())["iteration"] == 1  # the fresh run's own
    with pytest.raises(ValueError, match="written without train.ema_decay; resume it without"):
        train(small_config(synth_root, out, **extra), resume=True)


def test_ddp_two_processes_with_torchrun(synth_root, tmp_path):
    """torch DDP (gloo on CPU) launched by torchrun, with the auxiliary head and rare-class
    sampling: two ranks on their own shards, rank 0 writing the checkpoint and the weights contract."""
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "narrow_seg_ros.cli.main"]  # localhost only
    cmd += train_args(
        "config/train_ndnet45_synth.yaml",
        synth_root,
        out,
        4,
        "128x256",
        "--set",
        "model.options={aux_head: true}",
        "--set",
        "train.aux_weight=0.4",
        "--set",
        "train.log_interval=2",
        "--set",
        "data.rare_class_sampling.fraction=0.5",
        "--set",
        "train.ema_decay=0.9",
        batch_size=2,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed: 2 processes (gloo), 2 images each per iteration" in proc.stdout
    # the label-map pixel counts (class weights, rare-class sampling) come from rank 0 by broadcast
    assert "class weights:" in proc.stdout and "rare-class sampling (50 % of samples)" in proc.stdout
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 4 and any(k.startswith("aux_head.") for k in state["model"])
    assert int(state["ema"]["n_averaged"]) == 4  # the weight average follows every step
    weights = load_weights(out / "weights.pt")
    assert not any(k.startswith("aux_head.") for k in weights.state_dict)
    rows = (out / "log.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["2", "4"]
    # publish from the DDP checkpoint, its data moved away: the raw weights without the aux head,
    # the input size from the checkpoint (base_size is null in this config)
    assert state["input_size"] == [128, 256] and state["config"]["data"]["base_size"] is None
    state["config"]["data"]["root"] = str(tmp_path / "moved")
    torch.save(state, tmp_path / "checkpoint.pt")
    assert (
        cli_main(["extract-weights", str(tmp_path / "checkpoint.pt"), "--raw", "--out", str(tmp_path / "raw.pt")]) == 0
    )
    raw = load_weights(tmp_path / "raw.pt")
    assert raw.state_dict.keys() == weights.state_dict.keys() and "aux_head" not in raw.model_options
    assert all(torch.equal(raw.state_dict[k], state["model"][k]) for k in raw.state_dict)
    assert raw.input_size == [128, 256] and raw.build_model() is not None


def test_vnet_trains_on_cpu(synth_root, tmp_path, cli):
    """VNet's reversible training through the trainer on the CPU, in its own process: torch 2.13
    corrupted the heap there in channels_last (now contiguous on the CPU), killing the process."""
    out = tmp_path / "vnet"
    proc = cli(
        *train_args(
            "config/train_vnet_synth.yaml",
            synth_root,
            out,
            3,
            "128x256",
            "--base-size",
            "128x256",
            "--set",
            "train.class_weights=log",
        )
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_weights(out / "weights.pt").model == "vnet"


def test_overfits_tiny_set(synth_root, tmp_path):
    """Loss falls and mIoU rises on a tiny set (train = val): the whole pipeline learns, to the
    levels this run reaches (final logged loss 0.57, mIoU 35 %, pixel accuracy 83 % on this
    project's CPU; the bounds leave room for another CPU's rounding, not for a slower learner)."""
    from narrow_seg_ros.data.cityscapes import CityscapesDataset
    from narrow_seg_ros.models import build_model
    from narrow_seg_ros.training.evaluate import evaluate
    from narrow_seg_ros.weights import load_weights

    config = small_config(
        synth_root,
        tmp_path / "fit",
        **{
            "train.iters": 120,
            "optim.lr": 0.05,
            "data.val_split": "train",
            "train.val_interval": 120,
            "train.log_interval": 10,
            "data.scales": [1.0],
        },
    )
    summary = train(config)
    rows = (tmp_path / "fit" / "log.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[1]) for r in rows]
    assert losses[-1] < min(0.7, 0.5 * losses[0]), losses
    assert summary["miou"] > 0.3 and summary["pixel_accuracy"] > 0.75, summary
    weights = load_weights(tmp_path / "fit" / "weights.pt")
    assert weights.input_size == [128, 256] and "aux_head.0.0.weight" not in weights.state_dict
    torch.manual_seed(0)
    fresh = build_model("ndnet45")  # the same network before training
    data = CityscapesDataset(synth_root, "train")
    before = evaluate(fresh, data, 19, weights.mean, weights.std, weights.input_size).miou()
    assert summary["miou"] > before + 0.2, (before, summary["miou"])
    assert (tmp_path / "fit" / "curves.png").stat().st_size > 0
    assert any((tmp_path / "fit" / "samples").glob("*.png"))


def test_sigterm_checkpoints_and_resume_finishes(synth_root, tmp_path):
    out = tmp_path / "sig"
    cmd = [sys.executable, "-m", "narrow_seg_ros.cli.main"]
    cmd += train_args(
        "config/train_ndnet45_synth.yaml",
        synth_root,
        out,
        400,
        "64x128",
        "--set",
        "train.log_interval=1",
        batch_size=2,
    )
    proc = start(cmd)
    deadline = time.monotonic() + 120
    while not (out / "log.csv").exists() or len((out / "log.csv").read_text().splitlines()) < 4:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert 3 <= state["iteration"] < 400
    assert "continue with --resume" in output
    resumed = subprocess.run(
        cmd + ["--iters", str(state["iteration"] + 2), "--resume"], capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "weights.pt").exists()


def test_eval_cli_json_and_table(synth_root, tmp_path, cli):
    from conftest import make_weights

    weights = make_weights(tmp_path / "w.pt", input_size=(128, 256))
    proc = cli("eval", "--weights", str(weights), "--data", str(synth_root), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert 0 <= result["miou"] <= 1 and len(result["per_class"]) == 19 and result["images"] == 4
    confusion = tmp_path / "new_folder" / "confusion.csv"  # the folder is made
    table = cli("eval", "--weights", str(weights), "--data", str(synth_root), "--confusion", str(confusion))
    assert "mIoU" in table.stdout and "road" in table.stdout
    rows = [line.split(",") for line in confusion.read_text().splitlines()]
    assert rows[0][1:] == [row[0] for row in rows[1:]] and len(rows) == 20 and rows[1][0] == "road"
    counts = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert counts.sum() == result["pixels"]
    assert np.trace(counts) / counts.sum() == pytest.approx(result["pixel_accuracy"])
    missing = cli("eval", "--weights", str(weights), "--data", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "error" in missing.stderr


def test_distillation_run_learns_from_a_frozen_teacher(synth_root, tmp_path, capsys):
    """train.distill: the teacher (a weights file of another architecture, normalised its own way)
    sees each batch as it was trained to see it, stays frozen, and its term changes the run; a
    teacher of other classes is refused before training starts."""
    from narrow_seg_ros.training.distill import Teacher

    train(small_config(synth_root, tmp_path / "teacher", **{"train.iters": 2, "model.options": {"head": "fcn8"}}))
    teacher_file = tmp_path / "teacher" / "weights.pt"
    weights = load_weights(teacher_file)
    weights.mean, weights.std = [0.3, 0.4, 0.5], [0.2, 0.25, 0.3]
    save_weights(weights, teacher_file)
    raw = torch.rand(2, 3, 64, 96)
    student_mean, student_std = [0.5] * 3, [0.5] * 3
    teacher = Teacher(str(teacher_file), weights.class_names, student_mean, student_std, torch.device("cpu"))
    own = (raw - torch.tensor(weights.mean).view(1, 3, 1, 1)) / torch.tensor(weights.std).view(1, 3, 1, 1)
    expected = weights.build_model()(own, full_resolution=False)
    torch.testing.assert_close(teacher((raw - 0.5) / 0.5), expected, rtol=1e-4, atol=1e-5)

    runs = {}
    for name, distill in (("plain", None), ("distilled", {"teacher": str(teacher_file), "weight": 5.0})):
        config = small_config(
            synth_root, tmp_path / name, **{"train.iters": 2, "model.name": "vnet", "train.distill": distill}
        )
        train(config)
        runs[name] = (tmp_path / name / "log.csv").read_text().splitlines()[1].split(",")
    assert f"distilling from {teacher_file} (ndnet45 head=fcn8): weight 5.0, temperature 1.0" in capsys.readouterr().out
    assert runs["plain"][0] == runs["distilled"][0] == "2" and runs["plain"][1] != runs["distilled"][1]
    assert not any(p.requires_grad for p in teacher.model.parameters())

    weights.class_names = list(reversed(weights.class_names))
    save_weights(weights, tmp_path / "other.pt")
    other = small_config(
        synth_root, tmp_path / "other", **{"train.iters": 1, "train.distill": {"teacher": str(tmp_path / "other.pt")}}
    )
    with pytest.raises(ValueError, match="not the dataset's classes in its order"):
        train(other)
