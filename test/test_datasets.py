"""Folder datasets (CamVid layout, YAML class tables), transfer between class sets, cross-class-set
evaluation, and the engine at sizes that are not multiples of the network's stride. Every fixture
is made here: tiny frames in the CamVid layout (72x96, not a multiple of 32) and in a custom layout."""

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import make_weights

from narrow_seg_ros.data.folder import CAMVID, FolderDataset, image_class_pixels, load_spec, open_dataset
from narrow_seg_ros.data.transforms import normalize
from narrow_seg_ros.inference.engine import Segmenter
from narrow_seg_ros.models import build_model
from narrow_seg_ros.models.transfer import class_mapping, counterpart, transfer_state
from narrow_seg_ros.training.config import load_config
from narrow_seg_ros.training.evaluate import evaluate, predict
from narrow_seg_ros.training.loop import train
from narrow_seg_ros.training.metrics import ConfusionMatrix
from narrow_seg_ros.weights import Weights, load_weights, random_weights, save_weights

SIZE = (72, 96)  # CamVid's 360x480 at 1/5: neither side a multiple of 32


def street(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB frame and its CamVid index mask: sky, building, road, a car; a void (11) strip."""
    rng = np.random.default_rng(seed)
    h, w = SIZE
    mask = np.full((h, w), 1, np.uint8)  # Building
    mask[: h // 4] = 0  # Sky
    mask[h // 2 :] = 3  # Road
    x = int(rng.integers(0, w - 30))
    mask[h // 2 - 8 : h // 2 + 10, x : x + 30] = 8  # Car
    mask[:, :2] = 11  # void
    palette = np.array(CAMVID.classes.palette + ((0, 0, 0),), np.uint8)
    image = palette[mask].astype(np.int16) + rng.integers(-20, 20, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_pairs(image_dir, mask_dir, seeds, image_ext=".png"):
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        image, mask = street(seed)
        cv2.imwrite(str(image_dir / f"f{seed:03d}{image_ext}"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(mask_dir / f"f{seed:03d}.png"), mask)


@pytest.fixture(scope="module")
def camvid_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("camvid")
    write_pairs(root / "train", root / "trainannot", range(6))
    write_pairs(root / "val", root / "valannot", range(100, 103))
    return root


def custom_yaml(root, classes=None, **extra) -> str:
    classes = classes or [{"name": "sky", "color": [70, 130, 180]}, {"name": "ground", "color": [128, 64, 128]}]
    spec = {"classes": classes, "ignore_index": 255, "splits": {"val": {"images": "img", "masks": "ann"}}, **extra}
    (root / "dataset.yaml").write_text(json.dumps(spec))  # JSON is YAML
    return str(root / "dataset.yaml")


def test_camvid_layout_loads_with_its_class_table(camvid_root):
    dataset = open_dataset("camvid", camvid_root, "train")
    assert len(dataset) == 6 and dataset.class_names[0] == "Sky" and dataset.class_names[-1] == "Bicyclist"
    image, target = dataset[0]
    raw = cv2.imread(str(camvid_root / "trainannot" / "f000.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (*SIZE, 3) and target.shape == SIZE
    assert (target[raw == 11] == 255).all() and (target[raw != 11] == raw[raw != 11]).all()  # void → ignore
    counts = image_class_pixels(dataset, 11)
    assert counts.shape == (6, 11) and counts.sum() == 6 * SIZE[0] * (SIZE[1] - 2)  # void not counted
    assert dataset.palette.tolist()[3] == [128, 64, 128]


def test_custom_yaml_dataset(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "ann").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.jpg"), np.zeros((8, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "ann" / "a.png"), np.array([[0, 1, 255, 1, 0] * 2] * 8, np.uint8))
    dataset = open_dataset(custom_yaml(tmp_path), None, "val")  # root: the YAML's folder
    image, target = dataset[0]
    assert dataset.class_names == ["sky", "ground"] and image.shape == (8, 10, 3)
    assert sorted(np.unique(target).tolist()) == [0, 1, 255]
    assert dataset.name(0) == "a"


@pytest.mark.parametrize(
    "change, message",
    [
        ("missing_mask", "mask missing for .*b.png: expected .*ann/b.png \\(same stem\\)"),
        ("stem_mismatch", "mask missing for .*c.png"),
        ("value_outside", "mask values \\[7\\] are outside the class table \\(0..1, ignore 255\\)"),
        ("no_split", "dataset has no split 'train'; it has val"),
    ],
)
def test_folder_dataset_errors_name_the_problem(tmp_path, change, message):
    (tmp_path / "img").mkdir()
    (tmp_path / "ann").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "ann" / "a.png"), np.zeros((4, 4), np.uint8))
    split = "val"
    if change == "missing_mask":
        cv2.imwrite(str(tmp_path / "img" / "b.png"), np.zeros((4, 4, 3), np.uint8))
    elif change == "stem_mismatch":
        cv2.imwrite(str(tmp_path / "img" / "c.png"), np.zeros((4, 4, 3), np.uint8))
        cv2.imwrite(str(tmp_path / "ann" / "c_label.png"), np.zeros((4, 4), np.uint8))
    elif change == "value_outside":
        cv2.imwrite(str(tmp_path / "ann" / "a.png"), np.full((4, 4), 7, np.uint8))
    else:
        split = "train"
    with pytest.raises(ValueError, match=message):
        open_dataset(custom_yaml(tmp_path), tmp_path, split)[0]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"classes": [{"name": "a"}], "splits": {}}, "classes must be a list of"),
        ({"classes": [{"name": "a", "color": [1, 2, 3]}], "splits": {"val": {"images": "i"}}}, "splits must map"),
        ({"classes": [{"name": "a", "color": [1, 2]}], "splits": {}}, "three integers 0..255"),
        ({"classes": [{"name": "a", "color": [1, 2, 3]}] * 2, "splits": {}}, "class names must be unique"),
        ({"classes": [{"name": "a", "color": [1, 2, 3]}], "ignore_index": 0, "splits": {}}, "ignore_index must lie"),
        ({"classes": [{"name": "a", "color": [1, 2, 3]}], "splits": {}, "colour": 1}, "unknown keys \\['colour'\\]"),
    ],
)
def test_dataset_yaml_validation(tmp_path, spec, message):
    path = tmp_path / "d.yaml"
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=message):
        load_spec(path)


def test_counterparts_by_name_and_alias():
    cityscapes = load_weights_class_names()
    camvid = list(CAMVID.classes.names)
    rows = class_mapping(camvid, cityscapes)  # each CamVid class → its Cityscapes row
    assert [cityscapes[j] for j in rows] == [
        "sky", "building", "pole", "road", "sidewalk", "vegetation", "traffic sign", "fence", "car", "person", "rider",
    ]  # fmt: skip
    # predictions of Cityscapes weights counted on CamVid: CamVid's own merge of its classes
    assert camvid[counterpart("truck", camvid)] == "Car" and camvid[counterpart("wall", camvid)] == "Building"
    assert camvid[counterpart("terrain", camvid)] == "Tree" and counterpart("lane marking", camvid) is None
    assert counterpart("Traffic_Sign", ["traffic sign"]) == 0  # case and underscores do not matter


def load_weights_class_names():
    from narrow_seg_ros.data.labels import CLASS_NAMES

    return list(CLASS_NAMES)


@pytest.mark.parametrize("model, options", [("ndnet45", {}), ("ndnet45", {"head": "fcn8"}), ("vnet", {})])
def test_transfer_carries_backbone_and_classifier_rows_by_name(model, options):
    source = random_weights(model, (64, 64), seed=1, **options)
    names = list(CAMVID.classes.names[:10]) + ["Unicorn"]  # one class with no counterpart
    torch.manual_seed(5)
    target = build_model(model, num_classes=len(names), **options)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_state(target, source.state_dict, source.class_names, names)
    assert report["fresh"] == ["Unicorn"] and report["carried"]["Pavement"] == "sidewalk"
    state = target.state_dict()
    for key in target.classifier_keys():
        src = source.state_dict[key]
        assert torch.equal(state[key][4], src[source.class_names.index("sidewalk")])
        assert torch.equal(state[key][5], src[source.class_names.index("vegetation")])
        assert torch.equal(state[key][10], fresh[key][10])  # Unicorn keeps its initialisation
    backbone = [k for k in state if k.split(".")[0] not in target.head_modules()]
    assert backbone and all(torch.equal(state[k], source.state_dict[k]) for k in backbone)


def test_transfer_refuses_another_network():
    source = random_weights("vnet", (64, 64), alpha=1, beta=2)
    with pytest.raises(ValueError, match="compare the model options"):
        transfer_state(build_model("vnet", 11, alpha=2, beta=2), source.state_dict, source.class_names, ["a"] * 11)


class FixedLogits(torch.nn.Module):
    """A 'network' that predicts a fixed class map (3 classes: a, b, c) whatever the input."""

    input_multiple, align_corners = 1, False

    def __init__(self, pred: np.ndarray):
        super().__init__()
        self.logits = torch.nn.functional.one_hot(torch.as_tensor(pred).long(), 3).permute(2, 0, 1)[None].float()

    def forward(self, x, full_resolution=True):
        return self.logits


def test_cross_class_set_eval_on_a_hand_built_case():
    """Predicted classes a, b, c; dataset classes B, A: a → A, b → B, c has no counterpart (wrong).
    Ground truth row 0 = A A B B, row 1 = B B A A; prediction row 0 = a a b c, row 1 = b c c a."""
    target = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], np.uint8)  # dataset ids: 0 = B, 1 = A
    pred = np.array([[0, 0, 1, 2], [1, 2, 2, 0]])
    model = FixedLogits(pred)
    mapping = [1, 0, None]
    matrix = evaluate(model, [(np.zeros((2, 4, 3), np.uint8), target)], 2, [0.5] * 3, [0.5] * 3, class_map=mapping)
    # A: 4 pixels, 3 predicted a (right), 1 predicted c (unmatched); B: 4 pixels, 2 predicted b, 2 c
    assert matrix.counts.tolist() == [[2, 0], [0, 3]] and matrix.unmatched.tolist() == [2, 1]
    iou = matrix.iou()
    assert iou[0] == pytest.approx(2 / 4) and iou[1] == pytest.approx(3 / 4)
    assert matrix.pixel_accuracy() == pytest.approx(5 / 8)


def camvid_weights(path, model="ndnet45", seed=0, **options):
    """Random weights in the contract with CamVid's 11 classes, trained size 72x96."""
    base = random_weights(model, SIZE, seed, **options)
    torch.manual_seed(seed)
    net = build_model(model, num_classes=11, **options)
    for name, value in net.state_dict().items():
        if name.endswith("running_var"):
            value.fill_(4.0)
    names, palette = list(CAMVID.classes.names), [list(c) for c in CAMVID.classes.palette]
    save_weights(Weights(model, names, palette, base.mean, base.std, list(SIZE), net.state_dict(), options), path)
    return path


def test_eval_cli_across_class_sets(camvid_root, tmp_path, cli):
    """Cityscapes-class weights scored on CamVid: the mapping is printed and the JSON counts on
    CamVid's classes."""
    weights = make_weights(tmp_path / "cs.pt", input_size=SIZE)
    proc = cli("eval", "--weights", str(weights), "--dataset", "camvid", "--data", str(camvid_root))
    assert proc.returncode == 0, proc.stderr
    assert "sidewalk->Pavement" in proc.stdout and "truck->Car" in proc.stdout
    proc = cli("eval", "--weights", str(weights), "--dataset", "camvid", "--data", str(camvid_root), "--json")
    summary = json.loads(proc.stdout)
    assert list(summary["per_class"]) == list(CAMVID.classes.names) and summary["images"] == 3


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("options", [{}, {"head": "fcn8"}], ids=["fcn32", "fcn8"])
def test_engine_at_a_non_multiple_size_matches_eval(camvid_root, tmp_path, backend, options):
    """The deployed path (engine, padded 72x96 → 96x96 canvas) gives the mask and so the mIoU that
    eval's predict gives on the same frames."""
    weights_path = camvid_weights(tmp_path / "w.pt", "ndnet45", **options)
    weights = load_weights(weights_path)
    net = weights.build_model()
    engine = Segmenter.from_weights(weights_path, backend=backend, device="cpu", warmup=0)
    assert engine.input_size == SIZE and engine.canvas_size == (96, 96)
    dataset = FolderDataset(CAMVID, camvid_root, "val")
    engine_matrix = ConfusionMatrix(11)
    for image, target in dataset:
        mask = engine.segment(image, "rgb8").mask
        assert mask.shape == SIZE
        ref = predict(net, image, weights.mean, weights.std, weights.input_size).numpy()
        assert (mask == ref).mean() >= 0.999  # float summation order (onnxruntime, the engine's upsampling)
        engine_matrix.update(torch.from_numpy(mask.astype(np.int64)), torch.from_numpy(target))
    eval_matrix = evaluate(net, dataset, 11, weights.mean, weights.std, weights.input_size)
    assert engine_matrix.miou() == pytest.approx(eval_matrix.miou(), abs=2e-3)


def test_keep_aspect_on_a_padded_canvas(tmp_path):
    """keep_aspect inside a non-multiple input size: letterbox, pad to the canvas, cut both off."""
    weights_path = camvid_weights(tmp_path / "w.pt")
    engine = Segmenter.from_weights(weights_path, backend="torch", resize_mode="keep_aspect", warmup=0)
    image, _ = street(3)
    wide = cv2.resize(image, (192, 72))
    out = engine.segment(wide, "rgb8")
    assert out.mask.shape == (72, 192)
    net = load_weights(weights_path).build_model()
    canvas = np.full((96, 96, 3), 128, np.uint8)  # the letterboxed image at the top left, the mean color
    canvas[:36] = cv2.resize(wide, (96, 36))
    canvas = normalize(canvas, [0.5] * 3, [0.5] * 3)[None]
    with torch.no_grad():
        ref = net(canvas).argmax(1)[0, :36].numpy().astype(np.uint8)
    ref = cv2.resize(ref, (192, 72), interpolation=cv2.INTER_NEAREST)
    assert (out.mask == ref).mean() >= 0.999


@pytest.mark.parametrize("input_size", [None, [108, 144]])
def test_fine_tune_across_class_sets(camvid_root, tmp_path, capsys, input_size):
    """Cityscapes-class weights start a CamVid run: rows carried by name, the weights file holds
    CamVid's classes, palette and the input size the run deploys at (the frames' own 72x96 when
    data.input_size is unset; the recipe's 1.5x otherwise)."""
    init = make_weights(tmp_path / "cs.pt", input_size=SIZE, head="fcn8")
    overrides = {
        "data.dataset": "camvid",
        "data.root": str(camvid_root),
        "data.crop": [64, 96],
        "data.input_size": input_size,
        "data.num_workers": 0,
        "train.batch_size": 2,
        "train.iters": 2,
        "train.val_interval": 2,
        "train.out": str(tmp_path / "run"),
        "train.init_weights": str(init),
        "train.device": "cpu",
    }
    summary = train(load_config("config/train_ndnet45_fcn8_camvid.yaml", overrides))
    printed = capsys.readouterr().out
    assert "Pavement<-sidewalk" in printed and "Tree<-vegetation" in printed and "Bicyclist<-rider" in printed
    weights = load_weights(tmp_path / "run" / "weights.pt")
    assert weights.class_names == list(CAMVID.classes.names) and weights.input_size == (input_size or list(SIZE))
    assert weights.palette[3] == [128, 64, 128] and weights.num_classes == 11
    assert list(summary["per_class"]) == list(CAMVID.classes.names)


@pytest.fixture(scope="module")
def two_sequences(tmp_path_factory):
    """CamVid layout with two sequences, as CamVid's own names: ``seqA_*`` in train and val,
    ``seqB_*`` in train only."""
    root = tmp_path_factory.mktemp("sequences")
    for split, names in (("train", ["seqA_001", "seqA_002", "seqB_001", "seqB_002"]), ("val", ["seqA_101"])):
        for seed, name in enumerate(names):
            image, mask = street(seed)
            (root / split).mkdir(exist_ok=True)
            (root / f"{split}annot").mkdir(exist_ok=True)
            cv2.imwrite(str(root / split / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / f"{split}annot" / f"{name}.png"), mask)
    return root


def test_sequence_selection_and_joined_splits(two_sequences):
    stems = lambda dataset: sorted(image.stem for image, _ in dataset.files)  # noqa: E731
    assert stems(open_dataset("camvid", two_sequences, "train+val", exclude_sequences=["seqB"])) == [
        "seqA_001", "seqA_002", "seqA_101"
    ]  # fmt: skip
    assert stems(open_dataset("camvid", two_sequences, "train", sequences=["seqB"])) == ["seqB_001", "seqB_002"]
    with pytest.raises(ValueError, match="no frames of split 'val' left after the sequence selection"):
        open_dataset("camvid", two_sequences, "val", sequences=["seqB"])
    with pytest.raises(ValueError, match="data.val_sequences must be null or a list of sequence names"):
        load_config(None, {"data.val_sequences": "seqB"})


def test_held_out_sequence_never_reaches_training(two_sequences, tmp_path, monkeypatch):
    """data.val_sequences: validation sees only the held-out sequence, and no frame or mask of it
    is read for training (the loader, the class statistics of rare-class sampling)."""
    from narrow_seg_ros.data import pairs
    from narrow_seg_ros.training.config import open_split

    read = []
    original = pairs.read_image
    monkeypatch.setattr(pairs, "read_image", lambda path: read.append(path.stem) or original(path))
    read_target = FolderDataset.read_target
    monkeypatch.setattr(
        FolderDataset, "read_target", lambda self, path: read.append(path.stem) or read_target(self, path)
    )
    config = load_config(
        "config/train_ndnet45_fcn8_camvid.yaml",
        {
            "data.root": str(two_sequences),
            "data.train_split": "train+val",
            "data.val_split": "train",
            "data.val_sequences": ["seqB"],
            "data.crop": [64, 96],
            "data.num_workers": 0,
            "train.init_weights": None,
            "train.batch_size": 2,
            "train.iters": 3,
            "train.val_interval": 0,
            "train.out": str(tmp_path / "run"),
            "train.device": "cpu",
        },
    )
    assert sorted(p.stem for p, _ in open_split(config, "val").files) == ["seqB_001", "seqB_002"]
    train(config)
    assert read and not [stem for stem in read if stem.startswith("seqB")], read


def test_strip_shows_frame_truth_prediction_confidence(two_sequences, tmp_path, cli):
    """narrow-seg strip: one row per frame of the selected sequence, four tiles each."""
    out = tmp_path / "strip.png"
    proc = cli("strip", "--weights", "models/ndnet45_fcn8_camvid.onnx", "--dataset", "camvid", "--data",
               str(two_sequences), "--split", "train", "--sequences", "seqB", "--frames", "2", "--width", "96",
               "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "seqB_001, seqB_002" in proc.stdout
    strip = cv2.imread(str(out))
    assert strip.shape == (2 * SIZE[0], 4 * 96, 3)
    assert strip[: SIZE[0], :96].std() > 0 and (strip[: SIZE[0], 96:192].reshape(-1, 3) != 0).any()
