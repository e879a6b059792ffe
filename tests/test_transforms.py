"""Group transforms: crop geometry against the released code's (tests/fixtures/transforms.json),
one crop and flip per clip, tensor layout; the fast Clip* pipeline against the PIL one."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from ops.transforms import (ClipCompose, ClipMultiScaleCrop, ClipOverSample, GroupCenterCrop,
                            GroupFullResSample, GroupMultiScaleCrop, GroupNormalize, GroupOverSample,
                            GroupRandomHorizontalFlip, GroupScale, Stack, ToTorchFormatTensor,
                            build_test_transform, build_train_transform, build_val_transform,
                            clip_to_channels_first, multiscale_crop_candidates, normalize_uint8_batch,
                            resize_clip, train_augmentation)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _size(key: str) -> tuple[int, int]:
    w, h = key.split('x')
    return int(w), int(h)


def _texture(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth random RGB image with some noise, uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (h // 6 + 2, w // 6 + 2, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.float32)
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


def _clip(w: int, h: int, frames: int, seed: int = 0) -> list[Image.Image]:
    return [Image.fromarray(_texture(w, h, seed + i)) for i in range(frames)]


def _coordinates(w: int, h: int) -> Image.Image:
    """R = x % 256, G = y, B = x // 256: a pixel tells where it came from."""
    ys, xs = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.stack([xs % 256, ys, xs // 256], axis=2).astype(np.uint8))


def _origin(img: Image.Image, flipped: bool = False) -> tuple[int, int]:
    a = np.asarray(img).astype(int)
    r, g, b = a[0, -1 if flipped else 0]
    return int(r + 256 * b), int(g)


def _as_uint8(images: list[Image.Image]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(i) for i in images]))


# ------------------------------------------------------------------ geometry of the release

def test_multiscale_candidates_equal_reference(fixture_json):
    ref = fixture_json('transforms.json')['multiscale_candidates']
    assert len(ref) == 4
    for key, boxes in ref.items():
        w, h = _size(key)
        assert multiscale_crop_candidates(w, h, 224) == sorted(tuple(b) for b in boxes), key


@pytest.mark.parametrize('key', ['176x100', '340x256'])
def test_multiscale_crop_draws_only_reference_crops(fixture_json, key):
    allowed = {tuple(b) for b in fixture_json('transforms.json')['multiscale_candidates'][key]}
    w, h = _size(key)
    crop = GroupMultiScaleCrop(224, rng=random.Random(0))
    seen = {crop.sample(w, h) for _ in range(3000)}
    assert seen <= allowed
    assert len(seen) > 0.8 * len(allowed)  # the draw reaches (nearly) every candidate
    out = crop(_clip(w, h, 2))
    assert [im.size for im in out] == [(224, 224)] * 2


def test_one_crop_and_flip_per_clip():
    """Identical frames stay identical whatever crop and flip the clip draws."""
    frame = Image.fromarray(_texture(96, 64, 3))
    rng = random.Random(1)
    pipeline = [GroupMultiScaleCrop(48, rng=rng), GroupRandomHorizontalFlip(rng=rng)]
    for _ in range(12):
        clip = [frame.copy() for _ in range(4)]
        for t in pipeline:
            clip = t(clip)
        arrays = [np.asarray(im) for im in clip]
        assert all(np.array_equal(a, arrays[0]) for a in arrays)
    clip = [_coordinates(40, 30)] * 3
    seen = set()
    for _ in range(20):
        out = GroupRandomHorizontalFlip(rng=rng)(clip)
        firsts = {np.asarray(im)[0, 0, 0] for im in out}
        assert len(firsts) == 1  # all frames flipped, or none
        seen |= firsts
    assert seen == {0, 39}


@pytest.mark.parametrize('flip', [True, False])
@pytest.mark.parametrize('key', ['176x100', '340x256'])
def test_oversample_boxes_and_order(fixture_json, key, flip):
    ref = fixture_json('transforms.json')['oversample_10'][key]
    w, h = _size(key)
    assert GroupScale(256)([Image.new('RGB', (w, h))])[0].size == tuple(ref['scaled_size'])
    frames = [_coordinates(*ref['scaled_size'])] * 2  # already at the scaled size: scaling is a no-op
    out = GroupOverSample(224, 256, flip=flip)(frames)
    per_box = 4 if flip else 2
    assert len(out) == 5 * per_box
    for k, (left, top, right, bottom) in enumerate(ref['boxes']):
        views = out[k * per_box:(k + 1) * per_box]
        assert all(v.size == (right - left, bottom - top) for v in views)
        assert [_origin(v) for v in views[:2]] == [(left, top)] * 2
        if flip:
            assert [_origin(v, flipped=True) for v in views[2:]] == [(left, top)] * 2
            assert np.array_equal(np.asarray(views[2]), np.asarray(views[0])[:, ::-1])


@pytest.mark.parametrize('key', ['176x100', '340x256'])
def test_full_res_boxes_and_order(fixture_json, key):
    ref = fixture_json('transforms.json')['fullres_3'][key]
    w, h = _size(key)
    assert GroupScale(256)([Image.new('RGB', (w, h))])[0].size == tuple(ref['scaled_size'])
    out = GroupFullResSample(256, 256, flip=False)([_coordinates(*ref['scaled_size'])] * 2)
    assert len(out) == 6
    for k, (left, top, right, bottom) in enumerate(ref['boxes']):
        assert [_origin(v) for v in out[2 * k:2 * k + 2]] == [(left, top)] * 2
        assert out[2 * k].size == (right - left, bottom - top)


def test_center_crop_and_scale():
    out = GroupCenterCrop(224)(GroupScale(256)([_coordinates(340, 256)]))
    assert out[0].size == (224, 224) and _origin(out[0]) == (58, 16)
    assert GroupScale(256)([Image.new('RGB', (100, 176))])[0].size == (256, 450)
    assert GroupScale((20, 30))([Image.new('RGB', (100, 176))])[0].size == (30, 20)  # (h, w)


def test_stack_to_tensor_normalize_layout():
    clip = _clip(20, 12, 3)
    x = GroupNormalize(MEAN, STD)(ToTorchFormatTensor()(Stack()(clip)))
    assert x.shape == (9, 12, 20) and x.dtype == torch.float32
    for f, img in enumerate(clip):
        a = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
        want = (a - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
        assert torch.allclose(x[3 * f:3 * f + 3], want, atol=1e-6)
    assert np.array_equal(Stack(roll=True)(clip)[:, :, 0], np.asarray(clip[0])[:, :, 2])


# ------------------------------------------------------------------ fast pipeline vs PIL

def _grey_levels(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| of two normalised clips, in grey levels."""
    diff = (a - b).abs().view(-1, 3, *a.shape[-2:]).amax(dim=(0, 2, 3))
    return float((diff * torch.tensor(STD) * 255).max())


def test_resize_clip_within_one_grey_level_of_pil():
    """Including sizes where both sides change, and binary noise, the worst case for rounding."""
    rng = np.random.default_rng(0)
    for trial in range(24):
        w, h = (int(v) for v in rng.integers(12, 90, 2))
        ow, oh = (int(v) for v in rng.integers(12, 90, 2))
        if trial % 2:
            frames = (rng.integers(0, 2, (3, h, w, 1)) * 255).repeat(3, axis=3).astype(np.uint8)
        else:
            frames = np.stack([_texture(w, h, trial + i) for i in range(3)])
        want = np.stack([np.asarray(Image.fromarray(f).resize((ow, oh), Image.BILINEAR)) for f in frames])
        got = resize_clip(torch.from_numpy(frames).permute(0, 3, 1, 2), oh, ow).permute(0, 2, 3, 1)
        assert got.shape == want.shape
        assert np.abs(got.numpy().astype(int) - want).max() <= 1, (w, h, ow, oh)
    # binary noise squeezed horizontally and stretched vertically: two chained torch passes are
    # 2 grey levels off PIL here (frame 11 of this clip, torch 2.14)
    frames = np.stack([(np.random.default_rng(s).integers(0, 2, (63, 176, 1)) * 255).repeat(3, axis=2)
                       for s in range(16)]).astype(np.uint8)
    want = np.stack([np.asarray(Image.fromarray(f).resize((55, 263), Image.BILINEAR)) for f in frames])
    got = resize_clip(torch.from_numpy(frames).permute(0, 3, 1, 2), 263, 55).permute(0, 2, 3, 1)
    assert np.abs(got.numpy().astype(int) - want).max() <= 1


def test_resize_clip_box_equals_resize_then_crop():
    """The box drops columns before the vertical pass: the kept pixels must not change."""
    rng = np.random.default_rng(1)
    for trial in range(40):
        w, h = (int(v) for v in rng.integers(12, 120, 2))
        ow, oh = (int(v) for v in rng.integers(12, 160, 2))
        if trial % 4 == 0:
            ow = w  # height-only and width-only resizes take other branches
        elif trial % 4 == 1:
            oh = h
        left, top = int(rng.integers(0, ow)), int(rng.integers(0, oh))
        box = (left, top, int(rng.integers(left + 1, ow + 1)), int(rng.integers(top + 1, oh + 1)))
        frames = torch.from_numpy(np.stack([_texture(w, h, trial + i) for i in range(2)])).permute(0, 3, 1, 2)
        want = resize_clip(frames, oh, ow)[:, :, box[1]:box[3], box[0]:box[2]]
        assert torch.equal(resize_clip(frames, oh, ow, box), want), (w, h, ow, oh, box)


def test_clip_to_channels_first_copies_strided_clips():
    hwc = torch.randint(0, 256, (3, 10, 14, 3), dtype=torch.uint8)
    view = hwc.permute(0, 3, 1, 2)[:, :, 2:9, 1:12]
    out = clip_to_channels_first(view)
    assert out.is_contiguous() and torch.equal(out, view)
    contiguous = view.contiguous()
    assert clip_to_channels_first(contiguous) is contiguous


@pytest.mark.parametrize('size', [(176, 100), (340, 256)])
def test_fast_train_pipeline_matches_pil(size):
    clip = _clip(*size, 4)
    frames = _as_uint8(clip)
    slow = build_train_transform(224, MEAN, STD, flip=True, fast=False)
    fast = build_train_transform(224, MEAN, STD)
    assert fast.input_format == 'uint8' and getattr(slow, 'input_format', 'pil') == 'pil'
    for seed in range(8):  # several crop sizes, one- and two-sided resizes, flips
        random.seed(seed)
        a = slow(clip)
        random.seed(seed)
        b = fast(frames)
        assert a.shape == b.shape == (12, 224, 224)
        assert _grey_levels(a, b) <= 1.0 + 1e-3


def test_fast_val_pipeline_identical_for_integer_crops_and_close_otherwise():
    for size, tolerance in [((340, 256), 1e-3), ((176, 100), 1.0 + 1e-3)]:
        clip = _clip(*size, 3)
        a = build_val_transform(224, 256, MEAN, STD, fast=False)(clip)
        b = build_val_transform(224, 256, MEAN, STD)(_as_uint8(clip))
        assert a.shape == b.shape == (9, 224, 224)
        assert _grey_levels(a, b) <= tolerance, size


@pytest.mark.parametrize('crops,full_res', [(1, False), (3, False), (5, False), (10, False),
                                            (1, True), (10, True)])
def test_fast_test_pipelines_match_pil(crops, full_res):
    clip = _clip(176, 100, 2)
    a = build_test_transform(224, 256, MEAN, STD, test_crops=crops, full_res=full_res, fast=False)(clip)
    b = build_test_transform(224, 256, MEAN, STD, test_crops=crops, full_res=full_res)(_as_uint8(clip))
    side = 256 if full_res else 224
    assert a.shape == b.shape == (crops * 2 * 3, side, side)
    assert _grey_levels(a, b) <= 1.0 + 1e-3


def test_fast_multiview_order_matches_group():
    frames = _as_uint8([_coordinates(340, 256)] * 2)
    out = ClipOverSample(224, 256, flip=True)(frames.permute(0, 3, 1, 2))
    assert out.shape == (20, 3, 224, 224)
    ref = GroupOverSample(224, 256, flip=True)([_coordinates(340, 256)] * 2)
    assert all(np.array_equal(out[k].permute(1, 2, 0).numpy(), np.asarray(ref[k])) for k in range(20))


def test_uint8_clips_normalised_later_equal_float_clips():
    frames = _as_uint8(_clip(176, 100, 3))
    for build in (lambda **k: build_val_transform(224, 256, MEAN, STD, **k),
                  lambda **k: build_test_transform(224, 256, MEAN, STD, test_crops=3, **k)):
        u8 = build(normalize=False)(frames)
        assert u8.dtype == torch.uint8 and u8.shape[0] % 3 == 0
        batch = torch.stack([u8, u8])
        assert torch.equal(normalize_uint8_batch(batch, MEAN, STD), torch.stack([build()(frames)] * 2))
    with pytest.raises(ValueError, match='fast pipeline'):
        build_val_transform(224, 256, MEAN, STD, fast=False, normalize=False)


def test_train_augmentation_flip_switch():
    assert len(train_augmentation(224, flip=True).transforms) == 2
    assert len(train_augmentation(224, flip=False).transforms) == 1
    assert isinstance(train_augmentation(224, flip=False, fast=True).transforms[0], ClipMultiScaleCrop)


def test_bad_arguments():
    with pytest.raises(ValueError, match='test_crops'):
        build_test_transform(224, 256, MEAN, STD, test_crops=4)
    with pytest.raises(ValueError, match='uint8'):
        ClipCompose([lambda x: x])(torch.zeros(2, 8, 8, 3))
    with pytest.raises(ValueError, match='does not fit'):
        build_val_transform(224, 100, MEAN, STD)(torch.zeros(1, 100, 100, 3, dtype=torch.uint8))


# ------------------------------------------------------------------ frames of any size (real footage)

def _release_crop_sizes(image_w: int, image_h: int, input_size: int) -> list[tuple[int, int]]:
    """GroupMultiScaleCrop's crop sizes as the release computes them: sides of the short image side
    snapped to the input within 3 pixels, with no regard for the frame."""
    sides = [int(min(image_w, image_h) * s) for s in (1, .875, .75, .66)]
    snapped = [input_size if abs(s - input_size) < 3 else s for s in sides]
    return [(w, h) for i, h in enumerate(snapped) for j, w in enumerate(snapped) if abs(i - j) <= 1]


SIZES = [(w, h) for w in range(20, 420, 9) for h in range(20, 420, 13)] + [(44, 78), (110, 196), (222, 300),
                                                                           (111, 500), (223, 224), (114, 114)]


@pytest.mark.parametrize('input_size', [112, 224])
def test_multiscale_crops_fit_frames_of_any_size(input_size):
    """No candidate crop is larger than its frame; where the release's fit (its frames, extracted
    at a short side of 256, always do), ours are exactly the release's."""
    release_fits = 0
    for w, h in SIZES:
        candidates = multiscale_crop_candidates(w, h, input_size)
        assert all(x >= 0 and y >= 0 and x + cw <= w and y + ch <= h for cw, ch, x, y in candidates), (w, h)
        release = _release_crop_sizes(w, h, input_size)
        if all(cw <= w and ch <= h for cw, ch in release):
            release_fits += 1
            assert sorted({(cw, ch) for cw, ch, _, _ in candidates}) == sorted(set(release)), (w, h)
    assert release_fits > len(SIZES) // 2
    # the frames: the snapped side is capped at the frame's side
    assert (110, 112) in {(cw, ch) for cw, ch, _, _ in multiscale_crop_candidates(110, 196, 112)}
    assert max(cw for cw, *_ in multiscale_crop_candidates(222, 300, 224)) == 222


@pytest.mark.parametrize('size,input_size', [((44, 78), 112), ((110, 196), 112), ((78, 44), 112),
                                             ((222, 300), 224), ((300, 222), 224)])
def test_every_view_on_small_and_portrait_frames(size, input_size):
    """Training (every crop the draw can make), validation and every test view give the network's
    input size from frames smaller than it, portrait or landscape, in both families alike."""
    clip = _clip(*size, 2)
    frames = _as_uint8(clip)
    slow = build_train_transform(input_size, MEAN, STD, flip=True, fast=False)
    fast = build_train_transform(input_size, MEAN, STD)
    for seed in range(12):
        random.seed(seed)
        a = slow(clip)
        random.seed(seed)
        b = fast(frames)
        assert a.shape == b.shape == (6, input_size, input_size)
        assert _grey_levels(a, b) <= 1.0 + 1e-3
    scale = input_size * 256 // 224
    pipelines = [(build_val_transform(input_size, scale, MEAN, STD, fast=False),
                  build_val_transform(input_size, scale, MEAN, STD), 1, input_size)]
    for crops, full_res in [(1, False), (3, False), (5, False), (10, False), (1, True), (3, True), (10, True)]:
        side = scale if full_res else input_size
        pipelines.append((build_test_transform(input_size, scale, MEAN, STD, crops, full_res, fast=False),
                          build_test_transform(input_size, scale, MEAN, STD, crops, full_res), crops, side))
    for slow, fast, views, side in pipelines:
        a, b = slow(clip), fast(frames)
        assert a.shape == b.shape == (views * 2 * 3, side, side)
        assert _grey_levels(a, b) <= 1.0 + 1e-3
