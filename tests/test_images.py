"""The image pipeline: reduced-scale JPEG decoding, its bounded difference, modes, padding, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from c2s_lightning.data.images import ImagePreprocessing, load_image, to_rgb
from c2s_lightning.data.records import DatasetError
from c2s_lightning.models.processors import input_side


def photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A photo-like image: a scikit-image photograph stretched to ``size`` plus fine grain."""
    from skimage import data

    base = Image.fromarray(data.coffee()).resize(size, Image.Resampling.BICUBIC)
    grain = np.random.default_rng(seed).normal(0, 6, (size[1], size[0], 1))
    return Image.fromarray(np.clip(np.asarray(base, dtype=np.float64) + grain, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def jpeg_1600(tmp_path_factory):
    path = tmp_path_factory.mktemp("jpeg") / "photo.jpg"
    photo((1600, 1200)).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def jpeg_2400(tmp_path_factory):
    path = tmp_path_factory.mktemp("jpeg") / "big.jpg"
    photo((2400, 1800)).save(path, quality=90)
    return path


# -- decode size ----------------------------------------------------------------------------
@pytest.mark.parametrize("pad, size, gap, expected", [
    # hand-worked for a 1600x1200 JPEG. PIL decodes at the largest of 1/8, 1/4, 1/2, 1/1 not above
    # min(1600 // request_w, 1200 // request_h), with request = the covering side scaled to gap * S.
    # padded, long side >= 2 * 100: request (200, 150), min(8, 8) -> 1/8: 200x150, padded 200x200
    (True, 100, 2.0, (200, 200)),
    # not padded, short side >= 2 * 224: request (598, 448), min(2, 2) -> 1/2
    (False, 224, 2.0, (800, 600)),
    # padded, 2 * 448 = 896: request (896, 672), min(1, 1) -> whole, padded
    (True, 448, 2.0, (1600, 1600)),
    # gap 1: request (100, 75), min(16, 16) -> 1/8 (JPEG's smallest)
    (True, 100, 1.0, (200, 200)),
    # gap 1, not padded: request (299, 224), min(5, 5) -> 1/4
    (False, 224, 1.0, (400, 300)),
    # gap 1, padded: request (448, 336), min(3, 3) -> 1/2
    (True, 448, 1.0, (800, 800)),
    # no decode size: full resolution, padded
    (True, None, 2.0, (1600, 1600)),
])
def test_jpeg_is_decoded_at_the_smallest_scale_covering_the_model_input(jpeg_1600, pad, size, gap, expected):
    pipeline = ImagePreprocessing(pad_to_square=pad, decode_size=size, reducing_gap=gap)
    assert pipeline.load(jpeg_1600).size == expected


@pytest.mark.parametrize("w, h", [(4000, 3000), (3000, 4000), (2816, 2112), (1024, 768), (500, 375), (301, 97)])
@pytest.mark.parametrize("s", [32, 224, 336, 448])
@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("gap", [1.0, 2.0])
def test_requested_decode_size_always_covers_the_input(w, h, s, pad, gap):
    request = ImagePreprocessing(pad_to_square=pad, decode_size=s, reducing_gap=gap).draft_size((w, h))
    side, need = (max(w, h) if pad else min(w, h)), int(s * gap)
    if side <= need:
        assert request is None  # nothing to gain: decode whole
        return
    rw, rh = request
    assert (max(rw, rh) if pad else min(rw, rh)) >= need  # never below gap * S on the covering side
    for scale in (8, 4, 2):  # what PIL then decodes: the largest scale whose size still holds the request
        if min(w // rw, h // rh) >= scale:
            covered = max(-(-w // scale), -(-h // scale)) if pad else min(-(-w // scale), -(-h // scale))
            assert covered >= need
            break


def test_png_is_decoded_whole(tmp_path):
    path = tmp_path / "kadid.png"
    photo((512, 384)).save(path)
    assert ImagePreprocessing(decode_size=32).load(path).size == (512, 384)


@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("processor", ["siglip224", "clip336", "mplug448"])
def test_model_inputs_differ_little_from_full_resolution_decoding(jpeg_2400, pad, processor):
    image_processor = _processor(processor)
    pipeline = ImagePreprocessing(pad_to_square=pad, decode_size=input_side(image_processor))
    assert pipeline.load(jpeg_2400).size[0] < 2400  # decoded at a reduced scale
    full = _pixels(image_processor, load_image(jpeg_2400, pad_to_square=pad))
    small = _pixels(image_processor, pipeline.load(jpeg_2400))
    assert full.shape == small.shape
    std = torch.tensor(image_processor.image_std, dtype=torch.float64)[:, None, None]
    diff = ((full.double() - small.double()) * std).abs()  # back to the 0-1 pixel scale
    assert 0 < diff.mean() <= 0.003
    assert diff.max() <= 0.1  # no misplaced content: a shifted image would differ by ~1 at edges


def _processor(name: str):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from c2s_lightning.models.mplug_owl2.image_processing import MPLUGOwl2ImageProcessor

    return {"siglip224": lambda: SiglipImageProcessorPil(size={"height": 224, "width": 224}),
            "clip336": lambda: CLIPImageProcessorPil(size={"shortest_edge": 336},
                                                     crop_size={"height": 336, "width": 336}),
            "mplug448": lambda: MPLUGOwl2ImageProcessor(448)}[name]()


def _pixels(image_processor, image: Image.Image) -> torch.Tensor:
    out = image_processor(image) if callable(getattr(image_processor, "preprocess_one", None)) else \
        image_processor(images=[image], return_tensors="pt")["pixel_values"]
    return out[0]


# -- where S comes from ---------------------------------------------------------------------
@pytest.mark.parametrize("family, side", [
    ("tiny-llava", 32),  # fixed 32x32 resize
    ("tiny-llava-next", 64),  # largest grid resolution 32x64
    ("tiny-qwen2-vl", 32),  # at most 1024 pixels: sqrt
    ("tiny-idefics3", 32),  # longest edge 32
    ("tiny-mplug-owl2", 32),  # image_size
])
def test_encoder_exposes_the_side_its_processor_resizes_to(tiny_backbone_cache, family, side):
    assert tiny_backbone_cache(family).encoder.image_size == side


def test_input_side_of_hub_style_processors():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    assert input_side(_processor("clip336")) == 336
    # Qwen2-VL's default max_pixels 12845056 = 3584^2
    assert input_side(Qwen2VLImageProcessorPil(size={"shortest_edge": 3136, "longest_edge": 12845056})) == 3584
    assert input_side(Qwen2VLImageProcessorPil(size={"shortest_edge": 3136, "longest_edge": 1000})) == 32
    assert input_side(object()) is None and input_side(None) is None


# -- padding, wrapper, protocol -------------------------------------------------------------
def test_load_image_pads_with_the_clip_mean_colour_and_older_exports_with_their_own(tmp_path):
    img = Image.new("RGB", (4, 2), (10, 20, 30))
    img.paste((50, 60, 70), (0, 0, 2, 2))  # left half: mean (30, 40, 50)
    img.save(tmp_path / "x.png")
    out = np.asarray(load_image(tmp_path / "x.png", pad_to_square=True))
    assert out.shape == (4, 4, 3)
    # 255 x CLIP's mean (0.48145466, 0.4578275, 0.40821073) = (122.77, 116.75, 104.09), truncated as released
    assert (out[0] == (122, 116, 104)).all() and (out[3] == (122, 116, 104)).all()  # one row above, one below
    assert (out[1:3] == np.asarray(img)).all()
    assert load_image(tmp_path / "x.png").size == (4, 2)
    older = ImagePreprocessing.from_dict({"pad_to_square": True, "pad_colour": "image_mean", "image_size": None})
    out = np.asarray(older.load(tmp_path / "x.png"))
    assert (out[0] == (30, 40, 50)).all() and (out[3] == (30, 40, 50)).all() and (out[1:3] == np.asarray(img)).all()


def test_the_pad_band_is_the_processors_normalised_image_mean(tmp_path):
    """A 500x375 photo through the pipeline of a CLIP-processor model, then the processor: the
    band above and below the photo is the normalised pad colour, worked out by hand:
    (122/255 - 0.48145466) / 0.26862954 = -0.011255, (116/255 - 0.4578275) / 0.26130258 = -0.011196,
    (104/255 - 0.40821073) / 0.27577711 = -0.001333; the image's own mean would give anything."""
    from transformers import CLIPImageProcessorPil

    from c2s_lightning.models.encoding import ComparisonEncoder

    processor = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    encoder = ComparisonEncoder(type("P", (), {"image_processor": processor})())
    pipeline = ImagePreprocessing.for_encoder(encoder, pad_to_square=True)
    assert pipeline.pad_colour == (122, 116, 104) and pipeline.to_dict()["pad_colour"] == [122, 116, 104]
    photo((500, 375)).save(tmp_path / "p.png")
    pixels = processor(pipeline.load(tmp_path / "p.png"), return_tensors="pt")["pixel_values"][0]
    # 375 of 500 rows are the photo: 62 padded rows above -> 62 * 336 / 500 = 41.7 rows after the
    # resize; rows 0..35 are clear of the bicubic kernel's reach into the photo (and so is the bottom)
    band = torch.cat([pixels[:, :36], pixels[:, -36:]], dim=1).flatten(1)
    expected = torch.tensor([-0.011255, -0.011196, -0.001333])
    torch.testing.assert_close(band.mean(1), expected, atol=2e-6, rtol=0)
    assert (band - expected[:, None]).abs().max() < 2e-6


def test_loading_twice_is_loading_once(jpeg_1600):
    pipeline = ImagePreprocessing(pad_to_square=True, decode_size=32)
    once = pipeline.load(jpeg_1600)
    assert once.tobytes() == pipeline.load(once).tobytes()


def test_serialises_as_the_protocols_image_preprocessing_and_rejects_bad_fields():
    from c2s_lightning.models.protocol import image_preprocessing

    pipeline = ImagePreprocessing(pad_to_square=True, decode_size=448)
    assert ImagePreprocessing.from_dict(pipeline.to_dict()) == pipeline
    assert pipeline.to_dict() == {"pad_to_square": True, "pad_colour": [122, 116, 104], "image_size": None,
                                  "decode_size": 448, "reducing_gap": 2.0}
    # a full-resolution pipeline writes, and reads, what protocols without decode fields hold
    clip = {"pad_to_square": True, "pad_colour": [122, 116, 104], "image_size": None}
    assert ImagePreprocessing(pad_to_square=True).to_dict() == clip == image_preprocessing(True)
    assert ImagePreprocessing.from_dict(clip) == ImagePreprocessing(pad_to_square=True)
    # protocols written before the colour was recorded pad with each image's own mean, as trained
    for earlier in ({"pad_to_square": True, "pad_colour": "image_mean", "image_size": None}, {"pad_to_square": True}):
        assert ImagePreprocessing.from_dict(earlier) == ImagePreprocessing(pad_to_square=True, pad_colour=None)
    assert ImagePreprocessing(pad_to_square=True, pad_colour=None).to_dict()["pad_colour"] == "image_mean"
    with pytest.raises(ValueError, match="pad_colour"):
        ImagePreprocessing.from_dict({"pad_to_square": True, "pad_colour": "white"})
    with pytest.raises(ValueError, match="pad_colour"):
        ImagePreprocessing(pad_colour=(1, 2, 300))
    with pytest.raises(ValueError, match="unknown"):
        ImagePreprocessing.from_dict({"pad_to_square": True, "size": 3})
    with pytest.raises(ValueError, match="not supported"):
        ImagePreprocessing.from_dict({"pad_to_square": True, "image_size": 336})
    with pytest.raises(ValueError, match="decode_size"):
        ImagePreprocessing(decode_size=0)
    with pytest.raises(ValueError, match="reducing_gap"):
        ImagePreprocessing(decode_size=8, reducing_gap=0.5)


# -- modes ----------------------------------------------------------------------------------
def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 4096], [32768, 60000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    out = np.asarray(load_image(tmp_path / "g16.png"))
    expected = [[0, 1, 16], [128, 233, 255]]  # round(v / 257)
    assert (out[..., 0] == expected).all() and (out[..., 0] == out[..., 2]).all()


def test_big_endian_sixteen_bit_and_pgm_maxval(tmp_path):
    big = Image.fromarray(np.array([[0, 514, 65535]], dtype=">u2"))
    assert big.mode == "I;16B"
    assert np.asarray(to_rgb(big, "x"))[0, :, 1].tolist() == [0, 2, 255]
    pgm = tmp_path / "g12.pgm"  # 12-bit data: maxval 4095
    pgm.write_bytes(b"P5\n3 1\n4095\n" + np.array([0, 2048, 4095], dtype=">u2").tobytes())
    out = np.asarray(load_image(pgm))[0, :, 0].astype(int)
    assert np.abs(out - np.rint(np.array([0, 2048, 4095]) * 255 / 4095)).max() <= 1


def test_float_images_in_unit_range_scale_and_others_are_refused(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert np.asarray(load_image(tmp_path / "f.tif"))[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 2.0]], dtype=np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(DatasetError, match="hdr.tif.*float"):
        load_image(tmp_path / "hdr.tif")


def test_alpha_palette_and_cmyk_modes(tmp_path):
    la = Image.fromarray(np.array([[[10, 0], [200, 255]]], dtype=np.uint8), "LA")
    la.save(tmp_path / "la.png")
    assert np.asarray(load_image(tmp_path / "la.png"))[0].tolist() == [[10] * 3, [200] * 3]  # alpha dropped
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png")
    assert np.asarray(load_image(tmp_path / "p.png"))[0].tolist() == [[255, 0, 0], [0, 0, 255]]
    cmyk = Image.new("CMYK", (2, 1), (0, 255, 255, 0))  # red
    cmyk.putpixel((1, 0), (0, 0, 0, 128))  # 50% black
    cmyk.save(tmp_path / "c.tif")
    assert np.asarray(load_image(tmp_path / "c.tif"))[0].tolist() == [[255, 0, 0], [127, 127, 127]]


def test_unreadable_and_unconvertible_images_name_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DatasetError, match="broken.jpg"):
        ImagePreprocessing(decode_size=32).load(tmp_path / "broken.jpg")
    with pytest.raises(DatasetError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(DatasetError, match="odd.*mode La"):
        to_rgb(Image.new("La", (2, 2)), "odd")
