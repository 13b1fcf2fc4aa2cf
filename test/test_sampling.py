"""The trainer's sample stream: resumable order, DDP shards and rare-class sampling."""

import itertools

import numpy as np
import pytest

from narrow_seg_ros.data.transforms import TrainTransform
from narrow_seg_ros.training.sampling import NO_FOCUS, RareClassFocus, ResumableSampler, rare_class_probabilities

# (images, classes) pixel counts: class 0 everywhere, class 1 common, class 2 rare (and only one
# image holds enough of it), class 3 absent
CLASS_PIXELS = np.array(
    [
        [9000, 900, 0, 0],
        [9000, 800, 100, 0],
        [9000, 0, 10, 0],
        [9000, 700, 0, 0],
        [9000, 0, 0, 0],
        [9000, 600, 0, 0],
        [9000, 0, 0, 0],
        [9000, 500, 0, 0],
    ]
)


def take(sampler, count):
    return list(itertools.islice(iter(sampler), count))


def test_rare_class_probabilities_favour_rare_classes():
    p = rare_class_probabilities(CLASS_PIXELS, temperature=0.01, min_pixels=50)
    assert p.sum() == pytest.approx(1.0)
    assert p[2] > p[1] > p[0] and p[3] == 0.0
    # f_road ≈ 0.94 vs f_rare ≈ 0.0015: the common class is ~e^-94 times as likely
    assert p[0] < 1e-30
    # a large temperature is uniform over the classes that can be drawn
    assert rare_class_probabilities(CLASS_PIXELS, temperature=1e9, min_pixels=50) == pytest.approx([1 / 3] * 3 + [0])
    # no image holds 200 pixels of class 2: it cannot be drawn
    assert rare_class_probabilities(CLASS_PIXELS, temperature=0.01, min_pixels=200)[2] == 0.0
    with pytest.raises(ValueError, match="temperature must be > 0"):
        rare_class_probabilities(CLASS_PIXELS, temperature=0.0)
    with pytest.raises(ValueError, match="no image holds any class with >= 100000 pixels"):
        rare_class_probabilities(CLASS_PIXELS, temperature=0.01, min_pixels=100_000)


def test_rare_class_slots_hold_their_class_and_follow_the_fraction():
    focus = RareClassFocus(CLASS_PIXELS, fraction=0.5, temperature=1.0, min_pixels=50)
    stream = take(ResumableSampler(len(CLASS_PIXELS), 2, seed=7, focus=focus), 4000)
    focused = [(index, c) for index, _, c in stream if c != NO_FOCUS]
    assert 0.45 < len(focused) / len(stream) < 0.55
    assert all(CLASS_PIXELS[index, c] >= 50 for index, c in focused)
    drawn = np.bincount([c for _, c in focused], minlength=4) / len(focused)
    assert drawn == pytest.approx(focus.probabilities, abs=0.03)
    assert drawn[3] == 0
    # every sample has its own augmentation seed, also when a rare-class slot repeats an image
    assert len({seed for _, seed, _ in stream}) == len(stream)


def test_rare_class_samples_differ_across_ranks():
    """Ranks draw the few images of a rare class independently; equal draws still get their own seed."""
    focus = RareClassFocus(CLASS_PIXELS, fraction=1.0, temperature=0.01, min_pixels=50)
    streams = [
        take(ResumableSampler(len(CLASS_PIXELS), 1, seed=5, rank=r, world_size=4, focus=focus), 500) for r in range(4)
    ]
    assert streams[0] != streams[1]
    seeds = [seed for stream in streams for _, seed, _ in stream]
    assert len(set(seeds)) == len(seeds)


def test_stream_resumes_exactly_and_shards_across_ranks():
    focus = RareClassFocus(CLASS_PIXELS, fraction=0.5, temperature=0.01, min_pixels=50)
    full = take(ResumableSampler(len(CLASS_PIXELS), 2, seed=3, focus=focus), 40)
    # 4 batches per epoch: iteration 6 starts in the middle of the second epoch
    resumed = take(ResumableSampler(len(CLASS_PIXELS), 2, seed=3, start_iteration=6, focus=focus), 28)
    assert resumed == full[12:]
    # without rare-class sampling each epoch is a permutation, split between the ranks
    ranks = [take(ResumableSampler(len(CLASS_PIXELS), 2, seed=3, rank=r, world_size=2), 4) for r in (0, 1)]
    assert sorted(index for rank in ranks for index, _, _ in rank) == list(range(8))
    assert all(c == NO_FOCUS for rank in ranks for _, _, c in rank)
    # a fraction of 0 draws exactly the uniform stream (pinned: a run without rare-class sampling
    # keeps the data order its checkpoints resume with)
    zero = RareClassFocus(CLASS_PIXELS, fraction=0.0)
    assert take(ResumableSampler(8, 2, seed=3, focus=zero), 3) == [
        (3, 8053047280485620712, NO_FOCUS),
        (7, 1911593179790903443, NO_FOCUS),
        (6, 6062815274278709897, NO_FOCUS),
    ]
    assert take(ResumableSampler(8, 2, seed=3, rank=1, world_size=2, start_iteration=3), 2) == [
        (2, 5839918186241800584, NO_FOCUS),
        (4, 1798932345466327501, NO_FOCUS),
    ]
    with pytest.raises(ValueError, match="fraction must be in"):
        RareClassFocus(CLASS_PIXELS, fraction=1.5)


def test_train_transform_places_the_crop_on_the_focus_class():
    target = np.zeros((256, 512), np.uint8)
    target[240:246, 500:506] = 17  # a small object in the bottom-right corner
    image = np.zeros((256, 512, 3), np.uint8)
    image[target == 17] = 255
    transform = TrainTransform(crop_size=(64, 128), scales=(1.0, 1.5))
    focused = [transform(image, target, np.random.default_rng(s), focus_class=17) for s in range(40)]
    uniform = [transform(image, target, np.random.default_rng(s)) for s in range(40)]
    assert all((label == 17).any() for _, label in focused)
    assert sum((label == 17).any() for _, label in uniform) < 10
    # a single pixel is kept at every upscale (the crop window is placed where nearest sampling puts it)
    dot = np.zeros((256, 512), np.uint8)
    dot[101, 203] = 17
    upscaling = TrainTransform(crop_size=(32, 64), scales=(1.0, 1.25, 1.5, 1.75, 2.0))
    assert all((upscaling(image, dot, np.random.default_rng(s), focus_class=17)[1] == 17).any() for s in range(200))
    # image and label stay aligned: white where the object is (bilinear scaling blends its border)
    for picture, label in focused:
        assert ((picture[0] > 0.99) != (label == 17)).float().mean() < 0.01
    # a class the label map lacks falls back to a uniform crop
    fallback = transform(image, target, np.random.default_rng(0), focus_class=5)
    assert fallback[1].equal(uniform[0][1])
