"""The corrupted-segmenter toy of Ctrl-U (spec §4.3): data, segmenters, corruption, metrics."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from varl.diffusion.label_maps import (
    PALETTE,
    ConvSegmenter,
    CorruptedSegmenter,
    DilatedSegmenter,
    mean_iou,
    one_hot_condition,
    pixel_accuracy,
    random_label_maps,
    render_images,
    segment,
    train_segmenter,
)

torch.set_num_threads(1)


def test_label_maps_have_the_requested_classes_and_shape() -> None:
    gen = torch.Generator().manual_seed(0)
    labels = random_label_maps(200, num_classes=3, generator=gen)
    assert labels.shape == (200, 16, 16) and labels.dtype == torch.int64
    assert set(labels.flatten().tolist()) == {0, 1, 2}
    # every class shows up in most maps, and the background is the largest region on average
    present = torch.stack([(labels == k).flatten(1).any(1) for k in range(3)], 1)
    assert present.float().mean() > 0.9
    share = torch.bincount(labels.flatten(), minlength=3) / labels.numel()
    assert share[0] == share.max()


def test_label_maps_are_reproducible_under_a_seed() -> None:
    a = random_label_maps(4, generator=torch.Generator().manual_seed(3))
    b = random_label_maps(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_render_without_noise_is_the_palette() -> None:
    labels = torch.tensor([[[0, 1], [2, 3]]])
    img = render_images(labels, num_classes=4, noise_std=0.0)
    assert img.shape == (1, 3, 2, 2)
    assert_close(img[0, :, 1, 0], PALETTE[2])
    noisy = render_images(labels.repeat(64, 1, 1), noise_std=5.0)
    assert noisy.min() >= -1.0 and noisy.max() <= 1.0


def test_one_hot_condition_channels() -> None:
    labels = torch.tensor([[[0, 2], [1, 2]]])
    c = one_hot_condition(labels, 3)
    assert c.shape == (1, 3, 2, 2)
    assert torch.equal(c.argmax(1), labels) and torch.equal(c.sum(1), torch.ones(1, 2, 2))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: random_label_maps(0), "n"),
        (lambda: random_label_maps(2, num_classes=5), "num_classes"),
        (lambda: random_label_maps(2, size=4), "size"),
        (lambda: render_images(torch.tensor([[[0, 4]]])), "labels"),
        (lambda: render_images(torch.zeros(1, 2, 2, dtype=torch.int64), noise_std=-1), "noise_std"),
        (lambda: one_hot_condition(torch.zeros(2, 2, dtype=torch.int64), 3), "labels"),
    ],
)
def test_bad_arguments_raise_value_errors(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_float_labels_raise_type_error() -> None:
    with pytest.raises(TypeError, match="labels"):
        render_images(torch.zeros(1, 2, 2))


def test_mean_iou_and_pixel_accuracy_by_hand() -> None:
    target = torch.tensor([[[0, 0], [1, 1]]])
    pred = torch.tensor([[[0, 1], [1, 1]]])
    # class 0: |∩| = 1, |∪| = 2; class 1: |∩| = 2, |∪| = 3; class 2 absent from both: skipped
    assert mean_iou(pred, target, 3) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert pixel_accuracy(pred, target) == pytest.approx(0.75)
    assert mean_iou(target, target, 4) == 1.0
    with pytest.raises(ValueError, match="pred, target"):
        mean_iou(pred, target[:, :1], 3)
    with pytest.raises(ValueError, match="pred"):
        mean_iou(pred + 5, target, 3)


def test_corruption_formula_and_zero_level() -> None:
    base = ConvSegmenter(3)
    x = torch.rand(2, 3, 5, 5) * 2 - 1
    clean = CorruptedSegmenter(base, num_classes=3, beta=0.0)
    assert torch.equal(clean(x), base(x))
    bad = CorruptedSegmenter(base, num_classes=3, beta=0.5, omega=7.0, amplitude=2.0, seed=1)
    filters = bad.get_buffer("filters")
    assert_close(filters.flatten(1).norm(dim=1), torch.ones(3))
    probe = torch.nn.functional.conv2d(x, filters, padding=1)
    assert_close(bad(x), base(x) + 0.5 * 2.0 * torch.sin(7.0 * probe))
    assert not any(p.requires_grad for p in bad.parameters())
    with pytest.raises(ValueError, match="beta"):
        CorruptedSegmenter(base, num_classes=3, beta=-0.1)
    with pytest.raises(ValueError, match="omega"):
        CorruptedSegmenter(base, num_classes=3, beta=0.1, omega=math.inf)


def test_corruption_is_steep_in_the_input() -> None:
    # The corrupted logits move by up to β·A·ω per unit of the probe: a tiny input change
    # (a t vs t + Δ twin) flips far more than it would for g itself.
    torch.manual_seed(0)
    base = ConvSegmenter(3)
    bad = CorruptedSegmenter(base, num_classes=3, beta=1.0, omega=30.0, amplitude=4.0)
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    dx = 0.02 * torch.randn_like(x)
    with torch.no_grad():
        clean_move = (base(x + dx) - base(x)).abs().mean()
        bad_move = (bad(x + dx) - bad(x)).abs().mean()
    assert bad_move > 5 * clean_move


def test_segmenters_learn_the_clean_toy_quickly() -> None:
    torch.manual_seed(0)
    g = train_segmenter(ConvSegmenter(3), num_classes=3, steps=60, batch_size=16, seed=0)
    torch.manual_seed(1)
    oracle = train_segmenter(
        DilatedSegmenter(3), num_classes=3, steps=60, batch_size=16, noise_std=(0.0, 0.4), seed=1
    )
    gen = torch.Generator().manual_seed(5)
    labels = random_label_maps(32, num_classes=3, generator=gen)
    images = render_images(labels, num_classes=3, generator=gen)
    for model in (g, oracle):
        assert not any(p.requires_grad for p in model.parameters())
        assert mean_iou(segment(model, images), labels, 3) > 0.9


def test_train_segmenter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="steps"):
        train_segmenter(ConvSegmenter(3), num_classes=3, steps=0)
