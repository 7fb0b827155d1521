"""``FastComparator``: each image encoded once, each anchor's prefix run once, pairs batched.

How and what it saves: docs/fast_scoring.md. Why it can: a pair's tokens depend on its images
only through their feature counts (and Qwen2-VL's patch grids), so the processor runs once per
such signature pair, and pairs grouped by signature need no padding (a pair's logits do not
depend on what it is batched with, up to float rounding). Features enter the language model
through ``mm_encoder_outputs`` (``inputs_embeds`` where transformers predates it, as 5.17 does:
``hf_versions.image_inputs``). How many forwards that takes depends on the size mix, so with
several processes each phase runs as many forwards as the busiest rank plans
(``models/lockstep.py``): ZeRO-3 and FSDP hang on unequal counts.

Families whose text around an image depends on more than its size (Idefics3 with image
splitting) and families without feature input (mPLUG-Owl2) take the plain path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers.cache_utils import DynamicCache, DynamicLayer

from c2s_lightning.models.backbones import Backbone
from c2s_lightning.models.comparator import Comparator, comparison_query, evaluating
from c2s_lightning.models.encoding import batch_to
from c2s_lightning.models.hf_versions import cache_argument, image_inputs, image_token_id
from c2s_lightning.models.lockstep import agreed_count, repeat_text_forward, stand_in

FAST_FAMILIES = ("llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3")
"""Model types whose image tokens can be fed from precomputed features."""


@dataclass(frozen=True)
class _Encoded:
    """One image after the vision tower: LM-ready features and what its tokens depend on."""

    image: object  # held so that id(image) stays unique while the encoding is kept
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

    The anchors' features and prefix states live in memory (not the comparison cache) and are
    dropped whenever a parameter of the model changes (an optimizer step, a device move), so a
    training loop may keep one instance.

    Args:
        backbone: The model, processor, encoder and answer token ids.
        batch_size: Default number of pairs (and images for the vision tower) per forward pass.
        reuse_prefix: Run everything before the second image once per anchor (off: one forward
            over the whole pair, still from kept image features).
        lockstep: Every rank makes the same calls: with several ``torch.distributed`` processes,
            run as many forwards per call as the rank that needs most (ZeRO-3 and FSDP need it).
            Off: each rank its own forwards (for ranks that ask different things).
    """

    def __init__(self, backbone: Backbone, batch_size: int | None = None, *, reuse_prefix: bool = True,
                 lockstep: bool = False):
        super().__init__(backbone, batch_size)
        self.reuse_prefix, self.lockstep = reuse_prefix, lockstep
        self._lm_forwards = 0
        self._templates: dict[tuple, _Template] = {}
        self._anchors: dict[int, _Encoded] = {}
        # (id(anchor image), prefix key) -> (that image, kept so its id stays unique; [(K, V)] per layer)
        self._prefixes: dict[tuple, tuple[object, list]] = {}
        self._weights: tuple | None = None

    @property
    def fast(self) -> bool:
        """Whether this backbone takes the fast path (otherwise the plain ``Comparator`` one)."""
        if self.backbone.family not in FAST_FAMILIES:
            return False
        return not getattr(self.backbone.processor.image_processor, "do_image_splitting", False)

    def level_logits(self, first_images: Sequence, second_images: Sequence, batch_size: int | None = None) -> Tensor:
        """As ``Comparator.level_logits``, encoding each distinct image once: [B, 5] float32."""
        if not self.fast or len(first_images) != len(second_images):  # the plain path raises on the latter
            return super().level_logits(first_images, second_images, batch_size)
        size = self._size(batch_size, len(first_images))
        with evaluating(self.backbone.model):
            self._check_weights()
            codes = self._encode([[*first_images, *second_images]], size)[0]
            pairs = list(zip(codes[: len(first_images)], codes[len(first_images):]))
            return self._run_groups(pairs, size, prefix=False)

    def anchor_rows(self, anchor_images: Sequence, test_images: Sequence, batch_size: int | None = None) -> Tensor:
        """Level logits of every test image against every anchor, the anchor shown first.

        Args:
            anchor_images: The anchors (PIL images); their features and prefixes are kept by
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
            anchors, tests = self._encode([anchor_images, test_images], size, keep_first=True)
            pairs = [(a, t) for t in tests for a in anchors]
            return self._run_groups(pairs, size, prefix=self.reuse_prefix).reshape(shape)

    # -- images ------------------------------------------------------------------------------
    def _size(self, batch_size: int | None, total: int) -> int:
        return batch_size or self.batch_size or max(total, 1)

    def _check_weights(self) -> None:
        # Optimizer steps bump each parameter's version counter; moves change its storage.
        weights = tuple((p.data_ptr(), p._version) for p in self.backbone.model.parameters())
        if weights != self._weights:
            self._anchors.clear()
            self._prefixes.clear()
            self._weights = weights

    def _encode(self, lists: Sequence[Sequence], size: int, keep_first: bool = False) -> list[list[_Encoded]]:
        """One encoding per image of each list; each distinct image object through the vision
        tower once, ``size`` at a time; with ``keep_first`` the first list's are kept (anchors)."""
        known, batches = dict(self._anchors), []
        seen = set(known)
        for images in lists:
            missing = list({id(img): img for img in images if id(img) not in seen}.values())
            seen.update(map(id, missing))
            batches += [missing[start : start + size] for start in range(0, len(missing), size)]
        repeats = agreed_count(len(batches), self.backbone.model, self.lockstep) - len(batches)
        for batch in batches:
            known.update((id(code.image), code) for code in self._vision(batch))
        for _ in range(repeats):  # output dropped: only the count matters
            self._vision([stand_in(lists)])
        if keep_first:
            self._anchors.update((id(img), known[id(img)]) for img in lists[0])
        return [[known[id(img)] for img in images] for images in lists]

    def _vision(self, images: list) -> list[_Encoded]:
        model = self.backbone.model
        param = next(model.parameters())
        processed = dict(self.backbone.processor.image_processor(images=images, return_tensors="pt"))
        inputs = batch_to(processed, param.device, param.dtype)
        pooled = model.get_image_features(**inputs, return_dict=True).pooler_output
        grids = processed["image_grid_thw"].tolist() if "image_grid_thw" in processed else [()] * len(images)
        return [_Encoded(image, features, (features.shape[0], *grid))
                for image, features, grid in zip(images, _per_image(pooled, len(images)), grids)]

    # -- language model ----------------------------------------------------------------------
    def _run_groups(self, pairs: list[_Pair], size: int, prefix: bool) -> Tensor:
        """Logits ``[len(pairs), 5]``; pairs of one signature pair share unpadded batches. With
        ``prefix`` the anchors' missing prefixes run first, then per pair only its suffix."""
        out = torch.empty(len(pairs), len(self.backbone.level_token_ids))
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (first, second) in enumerate(pairs):
            groups[(first.signature, second.signature)].append(i)
        batches = [(self._template(pairs[rows[0]]), rows[start : start + size])
                   for rows in groups.values() for start in range(0, len(rows), size)]
        prefixes = self._missing_prefixes(batches, pairs, size) if prefix else []
        planned = agreed_count(len(prefixes) + len(batches), self.backbone.model, self.lockstep)
        start = self._lm_forwards
        for template, anchors in prefixes:
            self._fill_prefixes(template, anchors)
        for template, batch in batches:
            run = self._prefix_logits if prefix and self.reuse_prefix else self._full_logits
            out[batch] = run(template, [pairs[i] for i in batch])
        for _ in range(planned - (self._lm_forwards - start)):  # also covers a prefix fallback
            repeat_text_forward(self.backbone.model, self.backbone.level_token_ids[0])
        return out

    def _template(self, pair: _Pair) -> _Template:
        """The tokens of every pair with this pair's signatures, built once from this pair."""
        key = (pair[0].signature, pair[1].signature)
        if key in self._templates:
            return self._templates[key]
        encoded = self.backbone.encoder.encode_query([comparison_query(pair[0].image, pair[1].image)])
        ids = encoded["input_ids"]
        where = (ids[0] == image_token_id(self.backbone.model.config)).nonzero().flatten()
        k_first, k_second = pair[0].signature[0], pair[1].signature[0]
        if len(where) != k_first + k_second or int(encoded["query_positions"][0]) != ids.shape[1] - 1:
            raise RuntimeError(f"{self.model_id}: the pair's image tokens ({len(where)}) do not match its "
                               f"image features ({k_first} + {k_second}); use the plain Comparator")
        inner = _inner_model(self.backbone.model)
        if hasattr(inner, "get_rope_index"):  # Qwen2-VL: positions follow the patch grids
            positions, _ = inner.get_rope_index(
                ids, mm_token_type_ids=encoded.get("mm_token_type_ids"),
                image_grid_thw=encoded.get("image_grid_thw"), attention_mask=encoded["attention_mask"])
        else:
            positions = torch.arange(ids.shape[1])[None]
        split = int(where[k_first])
        prefix_key = (tuple(ids[0, :split].tolist()), tuple(positions[..., :split].flatten().tolist()))
        self._templates[key] = _Template(ids, positions, split, prefix_key)
        return self._templates[key]

    def _missing_prefixes(self, batches: list[tuple], pairs: list[_Pair], size: int) -> list[tuple]:
        """``(template, anchors)`` batches of at most ``size`` anchors whose prefix states are not
        kept yet, for the ``(template, pair rows)`` batches about to run."""
        todo: dict[tuple, tuple[_Template, dict]] = {}
        for template, rows in batches:
            _, anchors = todo.setdefault(template.prefix_key, (template, {}))
            for first, _ in (pairs[i] for i in rows):
                if (id(first.image), template.prefix_key) not in self._prefixes:
                    anchors[id(first.image)] = first
        return [(template, list(anchors.values())[start : start + size])
                for template, anchors in todo.values() for start in range(0, len(anchors), size)]

    def _fill_prefixes(self, template: _Template, anchors: list[_Encoded]) -> None:
        """Run the prefix of ``anchors`` (one forward) and keep row ``i``'s key/value states as
        ``anchors[i]``'s; a model that keeps them in another form (e.g. sliding windows) turns
        ``reuse_prefix`` off instead."""
        if not self.reuse_prefix:
            return
        states = DynamicCache()  # filled in place by the forward pass
        self._forward(template.input_ids[:, : template.split], template.positions[..., : template.split],
                      [a.features for a in anchors], len(anchors), states)
        self.reuse_prefix = all(type(layer) is DynamicLayer for layer in states.layers)
        if self.reuse_prefix:
            for row, anchor in enumerate(anchors):
                layers = [(layer.keys[row : row + 1], layer.values[row : row + 1]) for layer in states.layers]
                self._prefixes[(id(anchor.image), template.prefix_key)] = (anchor.image, layers)

    def _full_logits(self, template: _Template, pairs: list[_Pair]) -> Tensor:
        features = [code.features for pair in pairs for code in pair]
        return self._forward(template.input_ids, template.positions, features, len(pairs))

    def _prefix_logits(self, template: _Template, pairs: list[_Pair]) -> Tensor:
        kept = [self._prefixes[(id(first.image), template.prefix_key)][1] for first, _ in pairs]
        # A generator: DynamicCache copies each layer's batch as it is built, so no second full copy.
        states = DynamicCache(tuple(torch.cat([p[layer][i] for p in kept]) for i in (0, 1))
                              for layer in range(len(kept[0])))
        return self._forward(template.input_ids[:, template.split :], template.positions[..., template.split :],
                             [second.features for _, second in pairs], len(pairs), states)

    def _forward(self, ids: Tensor, positions: Tensor, features: list[Tensor], rows: int,
                 states: DynamicCache | None = None) -> Tensor:
        """Level logits ``[rows, 5]`` of one unpadded batch of ``rows`` identical token rows.

        Image tokens come from ``features``; ``states`` hold the keys/values of the tokens before
        ``ids`` and are extended in place.
        """
        model = self.backbone.model
        device = next(model.parameters()).device
        kwargs = dict(
            image_inputs(model, ids.to(device).expand(rows, -1), features),
            position_ids=positions.to(device).expand(*positions.shape[:-2], rows, positions.shape[-1]),
            logits_to_keep=1, use_cache=states is not None,
        )
        if states is not None:
            kwargs[cache_argument(model)] = states
        self._lm_forwards += 1
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
