"""The tiny tokenizer: WordPiece over the project's prompt words, with each family's chat template.

Tiny models need a tokenizer that behaves like a real one where it matters here (special tokens,
a chat template, BOS handling, words that split into pieces) without a download.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import PreTrainedTokenizerFast

from c2s_lightning.data import prompts
from c2s_lightning.data.levels import LEVELS
from c2s_lightning.models.mplug_owl2.processing import CHAT_TEMPLATE as MPLUG_OWL2_TEMPLATE

_ROLE_WORDS = ("USER", "ASSISTANT", "User", "Assistant", "user", "assistant", "system", "INST")

# Chat templates in the style of each family's real one, written for the tiny tokenizer. Images
# stay where the message puts them, so one template serves one- and two-image prompts.
CHAT_TEMPLATES = {
    "llava": (
        "{% for m in messages %}{{ m['role'] | upper }}:"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %} <image>"
        "{% else %} {{ c['text'] }}{% endif %}{% endfor %}"
        "{% if m['role'] == 'assistant' %}</s>{% endif %} {% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    ),
    "llava_next": (
        "{% for m in messages %}{% if m['role'] == 'user' %}[INST]"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %} <image>"
        "{% else %} {{ c['text'] }}{% endif %}{% endfor %} [/INST]"
        "{% else %}{% for c in m['content'] %} {{ c['text'] }}{% endfor %}</s>{% endif %}"
        "{% endfor %}"
    ),
    "qwen2_vl": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
        "{% endfor %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "idefics3": (
        "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
        "{% else %} {{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    ),
    "mplug_owl2": MPLUG_OWL2_TEMPLATE,  # the port's own; its processor splits at <|image|>
}

_SPECIAL_TOKENS = {
    "llava": ["<image>"],
    "llava_next": ["<image>"],
    "qwen2_vl": ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    "idefics3": ["<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>",
                 *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7))],
    "mplug_owl2": [],  # like the release's LLaMA tokenizer: <|image|> is never a token
}


def prompt_words() -> list[str]:
    """Every word and punctuation mark of the project's prompts, answers and level words."""
    texts = [prompts.COMPARISON_PROMPT, prompts.COMPARISON_ANSWER, prompts.RATING_PROMPT, prompts.RATING_ANSWER,
             *LEVELS, *prompts.RATING_LEVELS, *_ROLE_WORDS]
    splitter = pre_tokenizers.Whitespace()
    words = set(string.punctuation)
    for text in texts:
        words.update(w for w, _ in splitter.pre_tokenize_str(text.replace("<image>", " ")))
    return sorted(words)


def tiny_tokenizer(family: str = "llava", *, drop_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer over the prompt vocabulary, with the family's specials and template.

    Whole prompt words are single tokens; anything else falls back to letters (``s ##u ##p``),
    so a word left out with ``drop_words`` splits like a rare word in a real tokenizer.

    Args:
        family: Tiny family whose special tokens and chat template to use.
        drop_words: Words to leave out of the vocabulary (tests use it to split a level word).
    """
    drop = set(drop_words)
    letters = list(string.ascii_letters)
    # A dropped word keeps its slot under another name, so every other token id stays the same
    # and the tokenizer still fits a model built with the full vocabulary.
    words = [f"[unused{k}]" if w in drop else w for k, w in enumerate(prompt_words())]
    pieces = words + letters + [f"##{c}" for c in letters]
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<unk>", "<s>", "</s>", *dict.fromkeys(pieces)])}
    backend = Tokenizer(WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=64))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    backend.decoder = decoders.WordPiece()
    add_bos = family != "qwen2_vl"  # Llama-style tokenizers prepend BOS; Qwen's do not
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                               special_tokens=[("<s>", vocab["<s>"])])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>" if add_bos else None,
        eos_token="<|im_end|>" if family == "qwen2_vl" else "</s>", extra_special_tokens=_SPECIAL_TOKENS[family],
    )
    tokenizer.chat_template = CHAT_TEMPLATES[family]
    return tokenizer
