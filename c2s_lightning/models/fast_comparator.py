"""``FastComparator``: each image encoded once, each anchor's prefix run once, pairs batched.

Scoring asks one question of every test image against the same few anchors. The plain
``Comparator`` (like the authors' release) answers each (anchor, test) pair with a full forward
pass over both images. Here:

* every distinct image goes through the vision tower once; the language model receives the cached
  features through Hugging Face's ``mm_encoder_outputs`` instead of pixels;
* a pair's tokens depend on its images only through their feature counts (and Qwen2-VL's patch
  grids), so the processor runs once per such signature pair, not once per pair;
* where the text model keeps a plain key/value cache, everything before the second image (chat
  prefix, anchor image, the words between the images) runs once per anchor and its keys/values are
  reused, so per pair only the test image and the answer prefix run;
* pairs are grouped by signature, so no batch is padded and a pair's logits do not depend on what
  it is batched with (up to float rounding).

Families whose text around an image depends on more than its size (Idefics3 with image
splitting) and families without cached-feature input (mPLUG-Owl2) take the plain path. Where the
installed ``transformers`` predates ``mm_encoder_outputs`` (5.17), the features enter as
``inputs_embeds`` instead (``hf_versions.image_inputs``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers.cache_utils import DynamicCache, DynamicLayer

from c2s_lightning.models.backbones import Backbone
from c2s_lightning.models.comparator import Comparator, comparison_query, evaluating
from c2s_lightning.models.encoding import batch_to
from c2s_lightning.models.hf_versions import cache_argument, image_inputs

FAST_FAMILIES = ("llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3")
"""Model types whose image tokens can be fed from cached features."""


@dataclass(frozen=True)
class _Encoded:
    """One image after the vision tower: LM-ready features and what its tokens depend on."""

    image: object  # held so that id(image) stays unique while the encoding is cached
    features: Tensor  # [k, hidden], model device and dtype
    signature: tuple  # (k,), plus the patch grid where positions depend on it (Qwen2-VL)


@dataclass(frozen=True)
class _Template:
    """Token ids and positions shared by every pair of one signature pair."""

    input_ids: Tensor  # [1, L]
    positions: Tensor  # [1, L], or [3, 1, L] for multimodal rotary positions
    split: int  # first placeholder token of the second image; the prefix is [:split]
    prefix_key: tuple  # identifies the prefix's tokens and positions


_Pair = tuple[_Encoded, _Encoded]  # (first, second)


class FastComparator(Comparator):
    """A ``Comparator`` that reuses image features and the anchors' key/value prefixes.

    Caches hold the anchors' features and prefixes; they are dropped whenever a parameter of the
    model changes (an optimizer step, a device move), so a training loop may keep one instance.

    Args:
        backbone: The model, processor, encoder and answer token ids.
        batch_size: Default number of pairs (and images for the vision tower) per forward pass.
        reuse_prefix: Run everything before the second image once per anchor (off: one forward
            over the whole pair, still from cached image features).
    """

    def __init__(self, backbone: Backbone, batch_size: int | None = None, *, reuse_prefix: bool = True):
        super().__init__(backbone, batch_size)
        self.reuse_prefix = reuse_prefix
        self._templates: dict[tuple, _Template] = {}
        self._anchors: dict[int, _Encoded] = {}
        self._prefixes: dict[tuple, tuple[object, list]] = {}
        self._weights: tuple | None = None

    @property
    def fast(self) -> bool:
        """Whether this backbone takes the cached path (otherwise the plain ``Comparator`` one)."""
        if self.backbone.family not in FAST_FAMILIES:
            return False
        return not getattr(self.backbone.processor.image_processor, "do_image_splitting", False)

    def clear_cache(self) -> None:
        """Forget cached anchor features and prefixes (done automatically when weights change)."""
        self._anchors.clear()
        self._prefixes.clear()

    def level_logits(self, first_images: Sequence, second_images: Sequence,
                     batch_size: int | None = None) -> Tensor:
        """As ``Comparator.level_logits``, encoding each distinct image once: [B, 5] float32."""
        if not self.fast:
            return super().level_logits(first_images, second_images, batch_size)
        if len(first_images) != len(second_images):
            raise ValueError(f"{len(first_images)} first images but {len(second_images)} second images")
        size = self._size(batch_size, len(first_images))
        with evaluating(self.backbone.model):
            self._check_weights()
            codes = self._encode([*first_images, *second_images], size)
            pairs = list(zip(codes[: len(first_images)], codes[len(first_images):]))
            return self._run_groups(pairs, size, self._full_logits)

    def anchor_rows(self, anchor_images: Sequence, test_images: Sequence,
                    batch_size: int | None = None) -> Tensor:
        """Level logits of every test image against every anchor, the anchor shown first.

        Args:
            anchor_images: The anchors (PIL images); their features and prefixes are cached by
                object identity, so pass the same objects on every call.
            test_images: PIL images shown second.
            batch_size: Pairs per forward pass; defaults to the comparator's.

        Returns:
            Float32 tensor ``[len(test_images), len(anchor_images), 5]`` on the CPU.
        """
        shape = (len(test_images), len(anchor_images), len(self.backbone.level_token_ids))
        size = self._size(batch_size, shape[0] * shape[1])
        if not self.fast:
            firsts = [a for _ in test_images for a in anchor_images]
            seconds = [t for t in test_images for _ in anchor_images]
            return super().level_logits(firsts, seconds, size).reshape(shape)
        with evaluating(self.backbone.model):
            self._check_weights()
            anchors = self._encode(anchor_images, size, keep=True)
            tests = self._encode(test_images, size)
            pairs = [(a, t) for t in tests for a in anchors]
            run = self._prefix_logits if self.reuse_prefix else self._full_logits
            return self._run_groups(pairs, size, run).reshape(shape)

    # -- images ------------------------------------------------------------------------------
    def _size(self, batch_size: int | None, total: int) -> int:
        return batch_size or self.batch_size or max(total, 1)

    def _check_weights(self) -> None:
        # Optimizer steps bump each parameter's version counter; moves change its storage.
        weights = tuple((p.data_ptr(), p._version) for p in self.backbone.model.parameters())
        if weights != self._weights:
            self.clear_cache()
            self._weights = weights

    def _encode(self, images: Sequence, size: int, keep: bool = False) -> list[_Encoded]:
        """One encoding per image; each distinct image object through the vision tower once."""
        known = dict(self._anchors)
        missing = list({id(img): img for img in images if id(img) not in known}.values())
        for start in range(0, len(missing), size):
            for code in self._vision(missing[start : start + size]):
                known[id(code.image)] = code
                if keep:
                    self._anchors[id(code.image)] = code
        return [known[id(img)] for img in images]

    def _vision(self, images: list) -> list[_Encoded]:
        model = self.backbone.model
        param = next(model.parameters())
        processed = dict(self.backbone.processor.image_processor(images=images, return_tensors="pt"))
        inputs = batch_to(processed, param.device, param.dtype)
        pooled = model.get_image_features(**inputs, return_dict=True).pooler_output
        grids = processed.get("image_grid_thw")
        codes = []
        for i, features in enumerate(_per_image(pooled, len(images))):
            grid = tuple(grids[i].tolist()) if grids is not None else ()
            codes.append(_Encoded(images[i], features, (features.shape[0], *grid)))
        return codes

    # -- language model ----------------------------------------------------------------------
    def _run_groups(self, pairs: list[_Pair], size: int, run: Callable) -> Tensor:
        """Logits ``[len(pairs), 5]``; pairs of one signature pair share unpadded batches."""
        out = torch.empty(len(pairs), len(self.backbone.level_token_ids))
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (first, second) in enumerate(pairs):
            groups[(first.signature, second.signature)].append(i)
        for rows in groups.values():
            template = self._template(pairs[rows[0]])
            for start in range(0, len(rows), size):
                batch = rows[start : start + size]
                out[batch] = run(template, [pairs[i] for i in batch])
        return out

    def _template(self, pair: _Pair) -> _Template:
        key = (pair[0].signature, pair[1].signature)
        if key not in self._templates:
            self._templates[key] = self._build_template(pair)
        return self._templates[key]

    def _build_template(self, pair: _Pair) -> _Template:
        encoded = self.backbone.encoder.encode_query([comparison_query(pair[0].image, pair[1].image)])
        ids = encoded["input_ids"]
        config = self.backbone.model.config
        token = getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)
        where = (ids[0] == token).nonzero().flatten()
        k_first, k_second = pair[0].signature[0], pair[1].signature[0]
        if len(where) != k_first + k_second or int(encoded["query_positions"][0]) != ids.shape[1] - 1:
            raise RuntimeError(f"{self.model_id}: the pair's image tokens ({len(where)}) do not match its "
                               f"cached features ({k_first} + {k_second}); use the plain Comparator")
        inner = _inner_model(self.backbone.model)
        if hasattr(inner, "get_rope_index"):  # Qwen2-VL: positions follow the patch grids
            positions, _ = inner.get_rope_index(
                ids, mm_token_type_ids=encoded.get("mm_token_type_ids"),
                image_grid_thw=encoded.get("image_grid_thw"), attention_mask=encoded["attention_mask"])
        else:
            positions = torch.arange(ids.shape[1])[None]
        split = int(where[k_first])
        prefix_key = (tuple(ids[0, :split].tolist()), tuple(positions[..., :split].flatten().tolist()))
        return _Template(ids, positions, split, prefix_key)

    def _full_logits(self, template: _Template, pairs: list[_Pair]) -> Tensor:
        features = [code.features for pair in pairs for code in pair]
        return self._forward(template.input_ids, template.positions, features, len(pairs))

    def _prefix_logits(self, template: _Template, pairs: list[_Pair]) -> Tensor:
        prefixes = self._prefix_states(template, [first for first, _ in pairs])
        if prefixes is None:  # a cache the model keeps in another form (e.g. sliding windows)
            return self._full_logits(template, pairs)
        # A generator: the cache copies each layer's batch as it is built, so no second full copy.
        cache = DynamicCache(tuple(torch.cat([p[layer][i] for p in prefixes]) for i in (0, 1))
                             for layer in range(len(prefixes[0])))
        suffix_ids = template.input_ids[:, template.split :]
        suffix_positions = template.positions[..., template.split :]
        features = [second.features for _, second in pairs]
        return self._forward(suffix_ids, suffix_positions, features, len(pairs), cache)

    def _prefix_states(self, template: _Template, anchors: list[_Encoded]) -> list | None:
        """Per anchor, the keys/values ``[(K, V), ...]`` (one per layer) of the pair's prefix."""
        missing = list({id(a.image): a for a in anchors
                        if (id(a.image), template.prefix_key) not in self._prefixes}.values())
        if missing:
            ids = template.input_ids[:, : template.split]
            positions = template.positions[..., : template.split]
            cache = DynamicCache()  # filled in place by the forward pass
            self._forward(ids, positions, [a.features for a in missing], len(missing), cache)
            if any(type(layer) is not DynamicLayer for layer in cache.layers):
                self.reuse_prefix = False
                return None
            for row, anchor in enumerate(missing):
                states = [(layer.keys[row : row + 1], layer.values[row : row + 1]) for layer in cache.layers]
                self._prefixes[(id(anchor.image), template.prefix_key)] = (anchor.image, states)
        return [self._prefixes[(id(a.image), template.prefix_key)][1] for a in anchors]

    def _forward(self, ids: Tensor, positions: Tensor, features: list[Tensor], rows: int,
                 cache: DynamicCache | None = None) -> Tensor:
        """Level logits ``[rows, 5]`` of one unpadded batch of ``rows`` identical token rows.

        Image tokens come from ``features``; a ``cache`` holds the keys/values of the tokens
        before ``ids`` and is extended in place.
        """
        model = self.backbone.model
        device = next(model.parameters()).device
        kwargs = dict(
            image_inputs(model, ids.to(device).expand(rows, -1), features),
            position_ids=positions.to(device).expand(*positions.shape[:-2], rows, positions.shape[-1]),
            logits_to_keep=1, use_cache=cache is not None,
        )
        if cache is not None:
            kwargs[cache_argument(model)] = cache
        return model(**kwargs).logits[:, -1, self.backbone.level_token_ids].float().cpu()


def _per_image(pooled, count: int) -> list[Tensor]:
    """Split a vision tower's pooled output into one ``[k, hidden]`` tensor per image."""
    parts = list(pooled) if isinstance(pooled, (list, tuple)) else [pooled]
    parts = [part.reshape(-1, part.shape[-1]) for part in parts]
    if len(parts) == count:
        return parts
    rows = torch.cat(parts)  # Idefics3: all images' tokens in one block, equally many each
    if rows.shape[0] % count:
        raise RuntimeError(f"cannot split {rows.shape[0]} feature rows over {count} images")
    return list(rows.split(rows.shape[0] // count))


def _inner_model(model):
    """The multimodal model under the LM head (and under a peft wrapper, if any)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model

