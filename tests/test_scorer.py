"""Compare2Scorer with fake comparators whose logits are a known function of image brightness."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from c2s_lightning.data.records import IQARecord
from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.scoring.bank import AnchorBank, StaleAnchorBankError
from c2s_lightning.scoring.scorer import Compare2Scorer

LEVEL_SLOPES = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])


def brightness(image: Image.Image) -> float:
    return sum(image.convert("L").getdata()) / (255.0 * image.width * image.height)


def grey(level: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (level, level, level))


class BrightnessComparator:
    """The brighter second image wins: level logits ``8 * (b2 - b1) * (-2, -1, 0, 1, 2)``."""

    model_id = "fake-brightness"

    def __init__(self):
        self.pairs: list[tuple[float, float]] = []

    def level_logits(self, first_images, second_images, batch_size=None) -> torch.Tensor:
        pairs = [(brightness(a), brightness(b)) for a, b in zip(first_images, second_images)]
        self.pairs += pairs
        gaps = torch.tensor([b - a for a, b in pairs], dtype=torch.float32)
        return 8.0 * gaps[:, None] * LEVEL_SLOPES


class RowComparator(BrightnessComparator):
    """Offers ``anchor_rows``, as ``FastComparator`` does."""

    def __init__(self):
        super().__init__()
        self.row_calls = 0

    def anchor_rows(self, anchor_images, test_images, batch_size=None) -> torch.Tensor:
        self.row_calls += 1
        firsts = [a for _ in test_images for a in anchor_images]
        seconds = [t for t in test_images for _ in anchor_images]
        return self.level_logits(firsts, seconds).reshape(len(test_images), len(anchor_images), 5)


@pytest.fixture
def bank(tmp_path) -> AnchorBank:
    records = []
    for i, level in enumerate((40, 90, 140, 190, 240)):
        path = tmp_path / f"anchor{i}.png"
        grey(level).save(path)
        records.append(IQARecord(path=path, mos=float(i), std=0.2, ref=None, dataset="synth", name=path.name))
    return AnchorBank(records, dataset="synth", split="train")


TESTS = [grey(level) for level in (10, 70, 100, 130, 160, 200, 250)]  # darkest to brightest


def test_scores_follow_brightness(bank):
    scores = Compare2Scorer(BrightnessComparator(), bank).score(TESTS)
    assert scores.dtype == torch.float64 and scores.shape == (len(TESTS),)
    assert (scores.diff() > 0).all()


def test_anchor_block_computed_once_and_reused(bank):
    comparator = BrightnessComparator()
    scorer = Compare2Scorer(comparator, bank)
    scorer.score(TESTS[:3])
    assert len(comparator.pairs) == 5 * 4 + 3 * 5 and bank.model_fingerprint == comparator.model_id
    block = torch.tensor(bank.matrix)
    assert block[4, 0] > 0.5 > block[0, 4]  # the brightest anchor beats the darkest
    scorer.score(TESTS[3:])
    Compare2Scorer(comparator, bank).score(TESTS[:1])  # a new scorer over the same bank
    assert len(comparator.pairs) == 5 * 4 + 3 * 5 + 4 * 5 + 1 * 5
    torch.testing.assert_close(torch.tensor(bank.matrix), block)


def test_bank_of_another_model_is_refused_unless_recomputed(bank):
    bank.set_matrix([[0.5] * 5] * 5, "some-other-model")
    with pytest.raises(StaleAnchorBankError, match="another model.*some-other-model.*--recompute-anchors") as error:
        Compare2Scorer(BrightnessComparator(), bank).score(TESTS[:1])
    assert "\n" not in str(error.value)  # one line
    scores = Compare2Scorer(BrightnessComparator(), bank, recompute_anchors=True).score(TESTS)
    assert bank.model_fingerprint == "fake-brightness" and bank.matrix[4][0] > 0.5
    assert (scores.diff() > 0).all()


def test_recompute_anchors_recomputes_a_matrix_that_fits_once_per_scorer(bank):
    Compare2Scorer(BrightnessComparator(), bank).anchor_block()
    bank.matrix = [[0.5] * 5 for _ in range(5)]  # wrong, yet tagged with this model, images unchanged
    comparator = BrightnessComparator()
    scorer = Compare2Scorer(comparator, bank, recompute_anchors=True)
    scorer.score(TESTS[:2])
    scorer.score(TESTS[2:3])
    assert len(comparator.pairs) == 5 * 4 + 2 * 5 + 1 * 5  # the block once, then the test rows
    assert bank.matrix[4][0] > 0.5


def test_count_matrix_differs_from_probability_matrix(bank):
    soft = Compare2Scorer(BrightnessComparator(), bank).score(TESTS)
    count_bank = AnchorBank(bank.anchors, bank.dataset, bank.split)
    hard = Compare2Scorer(BrightnessComparator(), count_bank, matrix="count").score(TESTS)
    assert not torch.allclose(soft, hard, atol=1e-3)
    assert set(torch.tensor(count_bank.matrix).flatten().tolist()) <= {0.0, 0.5, 1.0}
    assert (hard.diff() >= 0).all()  # hard votes tie images between the same two anchors
    assert hard[2] == hard[3] and soft[2] < soft[3]  # both between anchors 90 and 140


def test_anchor_rows_are_used_when_offered_with_the_same_scores(bank):
    plain = Compare2Scorer(BrightnessComparator(), bank, batch_size=4).score(TESTS)
    comparator = RowComparator()
    fresh = AnchorBank(bank.anchors, bank.dataset, bank.split)
    scores = Compare2Scorer(comparator, fresh, batch_size=10).score(TESTS)
    assert comparator.row_calls == 1 + 4  # the anchor block, then 7 images 2 per call
    torch.testing.assert_close(scores, plain, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.tensor(fresh.matrix), torch.tensor(bank.matrix), atol=1e-7, rtol=0)


@pytest.mark.parametrize("readoff", ["raw", "minmax"])
def test_scores_do_not_depend_on_batch_size_and_progress_counts_images(bank, readoff):
    seen = []
    expected = Compare2Scorer(BrightnessComparator(), bank, batch_size=1, readoff=readoff).score(TESTS)
    for batch_size in (3, 12, 100):
        scorer = Compare2Scorer(BrightnessComparator(), bank, batch_size=batch_size, readoff=readoff)
        torch.testing.assert_close(scorer.score(TESTS, progress=seen.append), expected, atol=1e-10, rtol=0)
    assert sum(seen) == 3 * len(TESTS)
    assert Compare2Scorer(BrightnessComparator(), bank).score([]).shape == (0,)


class RecordingComparator(BrightnessComparator):
    """Keeps every image it is shown."""

    def __init__(self):
        super().__init__()
        self.images: list[Image.Image] = []

    def level_logits(self, first_images, second_images, batch_size=None) -> torch.Tensor:
        self.images += [*first_images, *second_images]
        return super().level_logits(first_images, second_images, batch_size)


CLIP_MEAN_BY_HAND = (122, 116, 104)  # 255 x (0.48145466, 0.4578275, 0.40821073) = 122.77, 116.75, 104.09, truncated


def padded_by_hand(image: Image.Image, colour=CLIP_MEAN_BY_HAND) -> bytes:
    """Centred on a square canvas of ``colour`` (None: the image's mean, rounded per channel), with numpy."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"))
    h, w, _ = pixels.shape
    side = max(h, w)
    canvas = np.empty((side, side, 3), dtype=np.uint8)
    canvas[:] = np.round(pixels.reshape(-1, 3).mean(axis=0)).astype(np.uint8) if colour is None else colour
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = pixels
    return canvas.tobytes()


@pytest.mark.parametrize("as_path", [False, True])
def test_non_square_images_are_padded_with_the_clip_mean_colour_when_asked(bank, make_images, tmp_path, as_path):
    wide = make_images(1, size=(12, 6), seed=5)[0]
    wide.save(tmp_path / "wide.png")
    given = tmp_path / "wide.png" if as_path else wide
    own_mean = ImagePreprocessing.from_dict({"pad_to_square": True, "pad_colour": "image_mean"})  # an older export's
    for pad, pipeline, expected in ((True, None, padded_by_hand(wide)), (False, None, wide.tobytes()),
                                    (None, own_mean, padded_by_hand(wide, colour=None))):
        comparator = RecordingComparator()
        Compare2Scorer(comparator, AnchorBank(bank.anchors, "synth", "train"), pad_to_square=pad,
                       pipeline=pipeline).score([given])
        shown = [img for img in comparator.images if img.size != (8, 8)]  # the anchors are 8x8
        assert shown and all(img.tobytes() == expected for img in shown)
        assert all(img.size == ((12, 6) if pad is False else (12, 12)) for img in shown)


def test_a_matrix_of_other_preprocessing_is_stale(bank):
    Compare2Scorer(BrightnessComparator(), bank, pad_to_square=False).anchor_block()
    with pytest.raises(StaleAnchorBankError, match="preprocessed as .*'pad_to_square': False.*--recompute-anchors"):
        Compare2Scorer(BrightnessComparator(), bank, pad_to_square=True).anchor_block()
    Compare2Scorer(BrightnessComparator(), bank, pad_to_square=True, recompute_anchors=True).anchor_block()
    assert bank.image_preprocessing["pad_to_square"] is True
