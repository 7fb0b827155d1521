"""Equal forward counts on every rank, for comparators whose work depends on the images.

Under ZeRO-3 or FSDP every module's forward gathers its parameters collectively: all processes
must run the same modules as often, in the same order, or the job hangs. A comparator grouping
pairs by image size plans each phase's forwards (vision tower, language model), agrees on the
most any rank plans (one ``all_reduce``) and repeats forwards, output dropped, to reach it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from PIL import Image


def several_ranks() -> bool:
    """Whether a ``torch.distributed`` group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def agreed_count(count: int, model: torch.nn.Module, lockstep: bool = True) -> int:
    """The forwards a phase runs: this rank's ``count``, or in lockstep with several ranks the
    most that any rank plans. Call it before the phase's first forward, on every rank."""
    if not (lockstep and several_ranks()):
        return count
    most = torch.tensor([count], device=next(model.parameters()).device)  # NCCL reduces CUDA tensors only
    dist.all_reduce(most, op=dist.ReduceOp.MAX)
    return int(most.item())


def repeat_text_forward(model: torch.nn.Module, token_id: int) -> None:
    """A one-token language-model forward whose output is dropped: a rank's lockstep padding."""
    ids = torch.tensor([[token_id]], device=next(model.parameters()).device)
    model(input_ids=ids, logits_to_keep=1, use_cache=False)


def stand_in(lists: Sequence[Sequence[Image.Image]]) -> Image.Image:
    """An image to repeat a vision forward on: the first one given, else a grey square."""
    first = next((image for images in lists for image in images), None)
    return first if first is not None else Image.new("RGB", (32, 32), (128, 128, 128))
