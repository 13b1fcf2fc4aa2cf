"""Data layer: Cityscapes label table, synthetic street scenes, loader, training augmentation, CLI."""

import filecmp
import shutil

import cv2
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import labels as cs_labels

from narrow_seg_ros.cli.main import main as cli_main
from narrow_seg_ros.data.cityscapes import CityscapesDataset
from narrow_seg_ros.data.labels import (
    CLASS_NAMES,
    ID_TO_TRAINID,
    IGNORE_INDEX,
    NAME_TO_ID,
    PALETTE,
    label_ids_to_train_ids,
)
from narrow_seg_ros.data.synth import generate, render_scene, render_sequence
from narrow_seg_ros.data.transforms import EvalTransform, PhotoMetricDistortion, TrainTransform

SIZE = (128, 256)
CORE_CLASSES = ("road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole")
VALID_LABEL_IDS = {label.id for label in cs_labels if label.id >= 0}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    pairs = generate(root, num=4, size=SIZE, seed=3)
    return root, pairs


# --- label table ----------------------------------------------------------------------------------


def test_label_table_matches_cityscapesscripts():
    assert len(CLASS_NAMES) == 19 and PALETTE.shape == (19, 3) and PALETTE.dtype == np.uint8
    assert CLASS_NAMES.index("road") == 0 and CLASS_NAMES.index("sky") == 10 and CLASS_NAMES.index("car") == 13
    assert IGNORE_INDEX == 255 and ID_TO_TRAINID.shape == (256,) and ID_TO_TRAINID.dtype == np.uint8
    for label in cs_labels:
        if label.id < 0:
            continue  # 'license plate' never appears in labelIds images
        assert NAME_TO_ID[label.name] == label.id
        if 0 <= label.trainId < 255:
            assert ID_TO_TRAINID[label.id] == label.trainId
            assert CLASS_NAMES[label.trainId] == label.name
            assert tuple(PALETTE[label.trainId]) == label.color
        else:
            assert ID_TO_TRAINID[label.id] == 255, label.name
    assert (ID_TO_TRAINID[34:] == 255).all()
    ids = np.array([[7, 26, 0], [23, 1, 33]], np.uint8)
    np.testing.assert_array_equal(label_ids_to_train_ids(ids), [[0, 13, 255], [10, 255, 18]])
    with pytest.raises(ValueError):
        label_ids_to_train_ids(np.array([300]))


# --- generator ------------------------------------------------------------------------------------


def test_generator_writes_cityscapes_layout(synth_root):
    root, pairs = synth_root
    images = sorted((root / "leftImg8bit").rglob("*.png"))
    labels = sorted((root / "gtFine").rglob("*.png"))
    expected = [f"synthtown_{i:06d}_000019" for i in range(4)]
    assert [p.relative_to(root).as_posix() for p in images] == [
        f"leftImg8bit/train/synthtown/{name}_leftImg8bit.png" for name in expected
    ]
    assert [p.relative_to(root).as_posix() for p in labels] == [
        f"gtFine/train/synthtown/{name}_gtFine_labelIds.png" for name in expected
    ]
    assert [(a, b) for a, b in pairs] == list(zip(images, labels))
    image = cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED)
    label = cv2.imread(str(labels[0]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (*SIZE, 3) and image.dtype == np.uint8
    assert label.shape == SIZE and label.dtype == np.uint8  # one channel of label ids


def test_generator_is_deterministic(synth_root, tmp_path):
    root, pairs = synth_root
    again = generate(tmp_path / "again", num=2, size=SIZE, seed=3)
    for (image, label), (image2, label2) in zip(pairs, again):
        assert filecmp.cmp(image, image2, shallow=False) and filecmp.cmp(label, label2, shallow=False)
    other = generate(tmp_path / "other", num=1, size=SIZE, seed=4)
    assert not filecmp.cmp(pairs[0][0], other[0][0], shallow=False)
    assert not filecmp.cmp(pairs[0][1], other[0][1], shallow=False)


def test_generated_labels_are_valid_and_cover_core_classes(synth_root):
    _, pairs = synth_root
    seen = set()
    for _, label_path in pairs:
        ids = set(np.unique(cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)).tolist())
        assert ids <= VALID_LABEL_IDS
        seen |= ids
    assert {NAME_TO_ID[name] for name in CORE_CLASSES} <= seen, sorted(seen)
    assert seen & {0, 1, 2, 3, 4, 5, 6, 9}, "some ignored (void) regions are expected"


def test_image_and_label_boundaries_agree():
    rgb, label = render_scene(np.random.default_rng(11), SIZE)
    road, sky, car = (label == NAME_TO_ID[n] for n in ("road", "sky", "car"))
    assert road.sum() > 1000 and sky.sum() > 500 and car.sum() > 50
    image = rgb.astype(np.float32)
    road_mean, sky_mean = image[road].mean(0), image[sky].mean(0)
    assert np.abs(road_mean - sky_mean).sum() > 40
    assert np.abs(image[car].mean(0) - road_mean).sum() > 15  # something car-coloured is drawn there
    # Colour jumps concentrate on label boundaries: were the label map shifted against the image by
    # even one pixel, jumps across boundaries would drop to the level of jumps inside regions.
    jump = np.abs(np.diff(image, axis=1)).sum(-1)
    boundary = np.diff(label.astype(np.int16), axis=1) != 0
    assert jump[boundary].mean() > 2.5 * jump[~boundary].mean()
    shifted = np.diff(np.roll(label, 1, axis=1).astype(np.int16), axis=1) != 0
    assert jump[boundary].mean() > 1.5 * jump[shifted & ~boundary].mean()


def test_sequence_moves_smoothly():
    frames = list(render_sequence(np.random.default_rng(5), (64, 128), 3))
    changed = [np.mean(a[1] != b[1]) for a, b in zip(frames, frames[1:])]
    assert all(0 < c < 0.25 for c in changed), changed  # the camera moves, a little per frame


# --- loader ---------------------------------------------------------------------------------------


def test_loader_returns_rgb_images_and_train_ids(synth_root):
    root, pairs = synth_root
    dataset = CityscapesDataset(root, "train")
    assert len(dataset) == 4 and dataset.name(0) == "synthtown_000000_000019"
    image, target = dataset[0]
    assert image.shape == (*SIZE, 3) and image.dtype == np.uint8
    assert target.shape == SIZE and target.dtype == np.uint8
    np.testing.assert_array_equal(image, cv2.imread(str(pairs[0][0]))[..., ::-1])  # BGR → RGB
    np.testing.assert_array_equal(target, ID_TO_TRAINID[cv2.imread(str(pairs[0][1]), cv2.IMREAD_UNCHANGED)])
    assert set(np.unique(target).tolist()) <= set(range(19)) | {255}

    x, y = CityscapesDataset(root, "train", transform=EvalTransform())[1]
    assert x.shape == (3, *SIZE) and x.dtype == torch.float32 and -1.0 <= x.min() and x.max() <= 1.0
    assert y.shape == SIZE and y.dtype == torch.int64
    x, y = CityscapesDataset(root, "train", transform=EvalTransform(size=(64, 128)))[1]
    assert x.shape == (3, 64, 128) and y.shape == SIZE  # labels stay at full resolution


def test_loader_rejects_empty_or_incomplete_folders(synth_root, tmp_path):
    root, _ = synth_root
    with pytest.raises(ValueError, match="no images"):
        CityscapesDataset(tmp_path, "train")
    with pytest.raises(ValueError, match="no images"):
        CityscapesDataset(root, "val")
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    next((broken / "gtFine").rglob("*_gtFine_labelIds.png")).unlink()
    with pytest.raises(ValueError, match="label missing"):
        CityscapesDataset(broken, "train")


# --- training augmentation ------------------------------------------------------------------------


def _ruler(height=40, width=60):
    """Image whose red channel is the column index, label = column // 4: both encode x."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width, dtype=np.uint8)
    image[..., 1] = 200
    label = np.broadcast_to((np.arange(width) // 4).astype(np.uint8) % 19, (height, width)).copy()
    return image, label


def _denormalize(x, mean=0.5, std=0.5):
    return np.rint((x.numpy() * std + mean) * 255).astype(np.int64)


def test_train_transform_crops_and_flips_image_and_label_together():
    image, label = _ruler()
    transform = TrainTransform(crop_size=(24, 32), scales=(1.0,), rng=0)
    flips = set()
    for _ in range(12):
        x, y = transform(image, label)
        assert x.shape == (3, 24, 32) and x.dtype == torch.float32
        assert y.shape == (24, 32) and y.dtype == torch.int64
        column = _denormalize(x[0])  # source column of every output pixel
        np.testing.assert_array_equal(y.numpy(), (column // 4) % 19)
        step = np.diff(column[0])
        assert (step == 1).all() or (step == -1).all()
        flips.add(bool(step[0] < 0))
    assert flips == {True, False}  # both orientations happen, and labels always follow the image


def test_train_transform_scales_and_pads_with_ignore():
    label = np.zeros((20, 30), np.uint8)
    label[:, 15:] = 7
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 15:] = 255
    x, y = TrainTransform(crop_size=(40, 60), scales=(2.0,), flip=False, rng=0)(image, label)
    assert (y[:, :30] == 0).all() and (y[:, 30:] == 7).all()  # exactly the whole image, doubled
    x, y = TrainTransform(crop_size=(30, 40), scales=(0.5,), flip=False, rng=0)(image, label)
    assert y.shape == (30, 40)
    assert (y[10:] == 255).all() and (y[:, 15:] == 255).all()  # padded bottom and right
    assert set(y[:10, :15].unique().tolist()) == {0, 7}
    assert x[:, 10:].abs().max() < 0.01  # image padding is the mean: 0 after normalisation
    x, y = TrainTransform(crop_size=(10, 15), base_size=(10, 15), scales=(1.0,), flip=False, rng=0)(image, label)
    assert (y[:, :7] == 0).all() and (y[:, 8:] == 7).all()  # base_size: the whole frame at half size


def test_photometric_distortion_changes_light_not_labels_nor_padding():
    """The same per-sample generator gives the same crop; the colours change, the labels and the
    mean-coloured padding do not; every change stays within the uint8 range."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    label = rng.integers(0, 11, (20, 30), dtype=np.uint8)
    plain = TrainTransform(crop_size=(30, 40), scales=(1.0,), flip=False)
    lit = TrainTransform(crop_size=(30, 40), scales=(1.0,), flip=False, photometric=PhotoMetricDistortion())
    changed = 0
    for seed in range(8):
        x0, y0 = plain(image, label, rng=np.random.default_rng(seed))
        x1, y1 = lit(image, label, rng=np.random.default_rng(seed))
        again = lit(image, label, rng=np.random.default_rng(seed))[0]
        assert torch.equal(y0, y1) and torch.equal(x1, again)
        assert x1[:, 20:].abs().max() < 0.01 and x1[:, :, 30:].abs().max() < 0.01  # padding: the mean
        assert x1.min() >= -1.0 and x1.max() <= 1.0
        changed += not torch.equal(x0, x1)
    assert changed >= 6  # each of four changes happens with probability 1/2: rarely none of them


@pytest.mark.parametrize(
    "value", [[1, 2], {"gamma": 1.0}, {"brightness": -1}, {"contrast": [1.5, 0.5]}, {"saturation": 2}]
)
def test_photometric_config_is_checked(value):
    from narrow_seg_ros.training.config import load_config

    with pytest.raises(ValueError, match="data.photometric"):
        load_config(overrides={"data.photometric": value})


def test_train_transform_is_reproducible_with_torch_seed():
    image, label = _ruler(64, 96)

    def draw(seed):
        torch.manual_seed(seed)
        transform = TrainTransform(crop_size=(32, 32), scales=(0.75, 1.0, 1.5))
        return [transform(image, label)[1] for _ in range(3)]

    first, again, other = draw(0), draw(0), draw(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_dataloader_workers_draw_different_augmentations():
    image, label = _ruler(64, 96)

    class Same(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return transform(image, label)

    transform = TrainTransform(crop_size=(32, 32), scales=(0.75, 1.0, 1.5, 2.0))

    def batches():
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(Same(), batch_size=1, num_workers=2, multiprocessing_context="fork")
        return [y for _, y in loader]

    first = batches()
    assert not torch.equal(first[0], first[1])  # worker 0 and worker 1 draw differently
    assert all(torch.equal(a, b) for a, b in zip(first, batches()))  # and reproducibly


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_synth_writes_dataset(tmp_path, capsys):
    argv = ["synth", "--out", str(tmp_path), "--num", "2", "--size", "64x128", "--seed", "5"]
    assert cli_main([*argv, "--split", "val", "--city", "demo"]) == 0
    assert str(tmp_path / "leftImg8bit" / "val" / "demo") in capsys.readouterr().out
    dataset = CityscapesDataset(tmp_path, "val")
    assert [dataset.name(i) for i in range(2)] == ["demo_000000_000019", "demo_000001_000019"]
    assert dataset[0][0].shape == (64, 128, 3)


def test_cli_synth_rejects_bad_arguments(tmp_path, capsys):
    for args, message in (
        (["--num", "2", "--size", "big"], "HxW"),
        (["--num", "0"], "positive integer"),
        (["--num", "1", "--split", "extra"], "invalid choice"),
        (["--num", "1", "--seed", "-1"], "non-negative"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            cli_main(["synth", "--out", str(tmp_path), *args])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert cli_main(["synth", "--out", str(tmp_path), "--num", "1", "--city", "a_b"]) == 2
    assert "city must be" in capsys.readouterr().err
    assert cli_main(["synth", "--out", str(tmp_path), "--num", "1", "--size", "8x8"]) == 2
    assert ">= 16" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.png"))
