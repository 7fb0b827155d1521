"""Native port of mPLUG-Owl2 (the Compare2Score backbone) on current ``transformers``.

No remote code and no monkey-patching: the modality-adaptive LLaMA layers are new modules built
from ``transformers``' Llama parts. ``load_released_checkpoint`` reads the released weights.
"""

from .causal_lm import MPLUGOwl2ForCausalLM, lora_target_modules
from .checkpoint import (
    CheckpointError,
    config_from_released,
    convert_released_state_dict,
    load_released_checkpoint,
    read_checkpoint_files,
)
from .configuration import IMAGE_TOKEN_INDEX, MPLUGOwl2Config, tiny_mplug_owl2_config
from .folders import folder_format, load_folder
from .image_processing import MPLUGOwl2ImageProcessor
from .multimodal import expand_image_placeholders
from .processing import MPLUGOwl2Processor, tokenizer_image_token
