"""Choose what trains: the whole model, LoRA adapters on the language model, or nothing.

A vision-language model has three parts: the vision encoder, the projector that maps image
features into the language model's embedding space, and the language model (with its head). The
``mode`` decides the language model's fate; ``train_vision`` and ``train_projector`` decide the
other two in every mode, so ``mode="frozen", train_projector=True`` is LLaVA's stage-1 recipe.
Parameters the forward never reaches (:func:`unused_parameters`) stay frozen in every mode.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from peft import LoraConfig, get_peft_model
from torch import nn

from c2s_lightning.models.mplug_owl2 import MPLUGOwl2ForCausalLM, lora_target_modules

log = logging.getLogger(__name__)

MODES = ("full", "lora", "frozen")
VISION_NAMES = ("vision_tower", "vision_model", "visual")
PROJECTOR_NAMES = ("multi_modal_projector", "connector", "merger", "image_newline", "visual_abstractor")
LORA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
UNUSED_VISION_HEADS = ("post_layernorm", "head")  # after the encoder layers; LLaVA-style models read a layer's output
_PEFT_SEGMENTS = re.compile(r"^base_model\.model\.|\.(modules_to_save\.default|original_module|base_layer)(?=\.)")


@dataclass(frozen=True)
class ModelParts:
    """Qualified names of a model's parts (as in ``named_modules``/``named_parameters``)."""

    language: str
    vision: tuple[str, ...]
    projector: tuple[str, ...]


def model_parts(model: nn.Module) -> ModelParts:
    """Find the language model, vision encoder and projector of a Hugging Face VLM by name.

    For mPLUG-Owl2 the language model (``model``) holds the vision tower and the abstractor
    (the projector role); their own settings override the language model's.
    """
    decoder = model.get_decoder()
    language = next((name for name, module in model.named_modules() if module is decoder), None)
    if language is None:
        raise ValueError(f"cannot locate the language model inside {type(model).__name__}")
    # Nothing inside a decoder layer is a vision part or projector: mPLUG-Owl2's per-modality
    # k/v projections and norms have children named "visual".
    in_layers = f"{language}.layers." if language else "layers."
    names = [n for n, _ in model.named_modules()] + [n for n, _ in model.named_parameters()]
    names = [n for n in names if not n.startswith(in_layers)]

    def find(leaf_names):
        found = sorted({n for n in names if n.split(".")[-1] in leaf_names})
        return tuple(n for n in found if not any(n.startswith(f + ".") for f in found if f != n))

    return ModelParts(language=language, vision=find(VISION_NAMES), projector=find(PROJECTOR_NAMES))


def configure_trainable(model: nn.Module, mode: str = "full", lora_rank: int = 8, lora_alpha: int = 16,
                        lora_dropout: float = 0.0, lora_target_modules: list[str] | str | None = None,
                        train_vision: bool = False, train_projector: bool = True) -> nn.Module:
    """Set ``requires_grad`` for a training mode; in LoRA mode wrap the model with peft.

    Args:
        model: A Hugging Face image-text-to-text model.
        mode: ``"full"`` trains the language model (embeddings and head included), ``"lora"``
            adds LoRA adapters to it and freezes its weights, ``"frozen"`` freezes it.
        lora_rank: LoRA rank r.
        lora_alpha: LoRA scaling numerator (the update is scaled by alpha / r).
        lora_dropout: Dropout on the LoRA branch.
        lora_target_modules: peft ``target_modules``; default: the language model's
            q/k/v/o projections only (a regex restricted to its submodule, so the vision
            encoder's projections of the same names are left alone; for mPLUG-Owl2 both
            modality branches of k and v, see ``mplug_owl2.lora_target_modules``).
        train_vision: Train the vision encoder fully (in LoRA mode it is saved with the adapter).
        train_projector: Train the projector fully (in LoRA mode saved with the adapter).
            LLaVA-NeXT's ``image_newline`` counts as projector but stays frozen under LoRA.

    Returns:
        The model, wrapped in a ``PeftModel`` in LoRA mode.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    parts, unused = model_parts(model), unused_parameters(model)  # before peft renames anything
    if mode == "lora":
        model = _wrap_lora(model, parts, lora_rank, lora_alpha, lora_dropout, lora_target_modules,
                           train_vision, train_projector)
    else:
        model.requires_grad_(mode == "full")
        for name, param in model.named_parameters():
            if _under(name, parts.vision):
                param.requires_grad_(train_vision)
            if _under(name, parts.projector):  # after vision: Qwen2-VL's merger sits inside it
                param.requires_grad_(train_projector)
    _freeze(model, unused)
    counts = parameter_counts(model)
    log.info("mode=%s: %d of %d parameters trainable (%.2f%%)", mode, counts["trainable"],
             counts["total"], 100 * counts["trainable"] / max(counts["total"], 1))
    return model


def unused_parameters(model: nn.Module) -> set[str]:
    """Names of the parameters a training forward never reaches, found from the model's structure.

    LLaVA-style models (a ``vision_feature_layer`` in their config: LLaVA, LLaVA-NeXT, ...) read
    the hidden states of one or a few vision encoder layers (``hidden_states[k]``, where index 0
    is the embeddings). The encoder layers after the deepest one read, and the tower's final norm
    and pooling head (``post_layernorm``, ``head``), then never receive a gradient: DDP refuses to
    train such parameters (it waits for their gradients), and they would only cost optimiser
    state. Other families (Qwen2-VL, Idefics3, mPLUG-Owl2) use every parameter. A test checks,
    for each tiny family, that every trainable parameter receives a gradient in a step. ``model``
    is not wrapped by peft yet.
    """
    selected = getattr(model.config, "vision_feature_layer", None)
    if selected is None:
        return set()
    selected = [selected] if isinstance(selected, int) else list(selected)
    unused: set[str] = set()
    for tower_name in model_parts(model).vision:
        tower = model.get_submodule(tower_name)
        layers_name = next((n for n, m in tower.named_modules()
                            if n.split(".")[-1] == "layers" and isinstance(m, nn.ModuleList)), None)
        if layers_name is None:
            raise ValueError(f"cannot find the encoder layers of {tower_name} ({type(tower).__name__})")
        count = len(tower.get_submodule(layers_name))
        read = max(k if k >= 0 else count + 1 + k for k in selected)  # hidden_states[read]: after `read` layers
        skipped = [f"{layers_name}.{i}" for i in range(read, count)]
        skipped += [n for n, _ in tower.named_children() if n in UNUSED_VISION_HEADS]
        unused |= {f"{tower_name}.{name}" for name, _ in tower.named_parameters()
                   if any(name.startswith(s + ".") for s in skipped)}
    return unused


def _freeze(model: nn.Module, base_names: set[str]) -> None:
    """Freeze parameters by their name in the unwrapped model (peft's copies included)."""
    for name, param in model.named_parameters():
        if _PEFT_SEGMENTS.sub("", name) in base_names:
            param.requires_grad_(False)
    if base_names:
        log.info("frozen, never reached by the forward: %d parameter tensors (%s, ...)",
                 len(base_names), sorted(base_names)[0])


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Numbers of trainable and of all parameters: ``{"trainable": ..., "total": ...}``."""
    params = list(model.parameters())
    return {"trainable": sum(p.numel() for p in params if p.requires_grad), "total": sum(p.numel() for p in params)}


def _wrap_lora(model, parts, rank, alpha, dropout, targets, train_vision, train_projector):
    if targets is None:
        targets = default_lora_targets(model, parts)
    named = dict(model.named_modules())  # parts.projector may name a bare parameter (image_newline)
    modules = [n for n in parts.projector if train_projector and n in named]
    if train_vision:
        modules = [n for n in modules if not _under(n, parts.vision)] + list(parts.vision)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                        modules_to_save=modules or None, bias="none")
    with peft_quietly():
        return get_peft_model(model, config)


@contextlib.contextmanager
def peft_quietly() -> Iterator[None]:
    """peft reads transformers' deprecated ``is_gradient_checkpointing`` on every wrap: its
    FutureWarning is peft's to fix, not something a user of this project can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def default_lora_targets(model: nn.Module, parts: ModelParts) -> str:
    """Regex of the language model's q/k/v/o ``nn.Linear`` layers (what peft can wrap)."""
    if isinstance(model, MPLUGOwl2ForCausalLM):
        # k/v are per-modality containers; the port's pattern names their text/visual Linears.
        return lora_target_modules(LORA_PROJECTIONS)
    return rf"{re.escape(parts.language)}\..*\.({'|'.join(LORA_PROJECTIONS)})"


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)
