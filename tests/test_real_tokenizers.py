"""Every level word is one token at the answer position with the real models' tokenizers.

The tiny tokenizer has each level word as a token by construction, so it cannot show what matters
for the real backbones. These tests build the real LLaMA-2 tokenizer (mPLUG-Owl2, LLaVA-1.5) and
Qwen's byte-level BPE (Qwen2-VL) from the shared data folder (``tokenizers/`` of
``shared_data.SHARED_DATA``: ``../shared/data`` beside the repository or ``$C2S_SHARED_DATA``; nothing
is downloaded; missing, the tests skip, or fail under CI) and put them through the project's own
processors, chat templates and the same check ``build_backbone`` runs (``assemble_backbone``).
The comparators' queries are checked token by token against the training sequences, which the
tiny tokenizers cannot do: they ignore whitespace, the real ones do not.

Neither ``sentencepiece`` nor ``tiktoken`` is installed, so the files are read the way
transformers' own converters read them, minus those packages: the SentencePiece model is parsed
with protobuf (transformers' bundled schema) and its BPE merges derived by
``generate_merges``, as ``SentencePieceExtractor`` does; Qwen's rank file (base64 token, rank) is
decoded here and handed to ``TikTokenConverter``. That these are the real vocabularies is checked
against facts independent of this code: the file's md5, ids published for the level words
(tokenizers/README.md), the well-known encodings of "Hello world", and Qwen2-VL's config ids.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import (
    AddedToken,
    CLIPImageProcessorPil,
    LlamaTokenizer,
    LlavaProcessor,
    Qwen2Tokenizer,
    Qwen2VLImageProcessorPil,
)
from transformers.convert_slow_tokenizer import TikTokenConverter, import_protobuf
from transformers.tokenization_utils_base import generate_merges

from c2s_lightning.data import prompts
from c2s_lightning.data.levels import LEVELS
from c2s_lightning.models.backbones import assemble_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.encoding import AnswerWordError
from c2s_lightning.models.mplug_owl2 import MPLUGOwl2Processor
from c2s_lightning.models.processors import ImageOnlyQwen2VLProcessor
from c2s_lightning.models.tiny_tokenizer import CHAT_TEMPLATES
from shared_data import SHARED_DATA, require

TOKENIZERS = SHARED_DATA / "tokenizers"
LLAMA_MODEL = TOKENIZERS / "llama2" / "tokenizer.model"
QWEN_RANKS = TOKENIZERS / "qwen" / "qwen.tiktoken"


@pytest.fixture(autouse=True)
def real_tokenizer_files():
    require(LLAMA_MODEL, QWEN_RANKS)

# Published ids of the level words after a space (tokenizers/README.md), in LEVELS order.
LLAMA_LEVEL_IDS = [20773, 15029, 2788, 2253, 11558]
QWEN_LEVEL_IDS = [37179, 10960, 4428, 2664, 16353]
QWEN2VL_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                   "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                   "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
"""Qwen2-VL's added tokens in id order from 151643 (its config: image 151655, vision_start 151652)."""

# Templates written here to give the layouts the real checkpoints render, next to the project's
# own tiny-family templates: LLaVA-1.5 puts each image on its own line ("USER: <image>\n..."),
# Qwen2-VL opens with its default system message.
LLAVA15_LAYOUT = (
    "{% for m in messages %}{{ m['role'] | upper }}: "
    "{% for c in m['content'] if c['type'] == 'image' %}<image>\n{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'text' %}{{ c['text'] }} {% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
QWEN2VL_LAYOUT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + CHAT_TEMPLATES["qwen2_vl"]
)


@functools.cache
def llama2_pieces() -> dict[str, int]:
    model = import_protobuf().ModelProto()
    model.ParseFromString(LLAMA_MODEL.read_bytes())
    assert model.trainer_spec.model_type == 2  # BPE, as LLaMA-2's is
    return {piece.piece: i for i, piece in enumerate(model.pieces)}


def llama2_tokenizer() -> LlamaTokenizer:
    """The real LLaMA-2 tokenizer (BOS added, as the checkpoints' tokenizer configs say)."""
    vocab = llama2_pieces()
    return LlamaTokenizer(vocab=dict(vocab), merges=_llama2_merges(), add_bos_token=True, legacy=False)


@functools.cache
def _llama2_merges() -> tuple:
    return tuple(generate_merges(llama2_pieces()))


class _QwenRanks(TikTokenConverter):
    @staticmethod
    def load_tiktoken_bpe(path: str) -> dict[bytes, int]:
        """tiktoken's rank file: ``<base64 token> <rank>`` per line."""
        ranks = {}
        for line in Path(path).read_bytes().splitlines():
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        return ranks


@functools.cache
def _qwen_vocab_merges() -> tuple[dict, tuple]:
    vocab, merges = _QwenRanks().extract_vocab_merges_from_model(str(QWEN_RANKS))
    return vocab, tuple(merges)


def qwen_tokenizer() -> Qwen2Tokenizer:
    vocab, merges = _qwen_vocab_merges()
    tokenizer = Qwen2Tokenizer(vocab=dict(vocab), merges=list(merges))
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN2VL_SPECIAL],
                         special_tokens=True)
    return tokenizer


def mplug_owl2_processor(chat_template: str | None = None) -> MPLUGOwl2Processor:
    tokenizer = llama2_tokenizer()
    tokenizer.pad_token = tokenizer.unk_token  # as the release sets it
    return MPLUGOwl2Processor(tokenizer, **({"chat_template": chat_template} if chat_template else {}))


def llava15_processor(chat_template: str) -> LlavaProcessor:
    tokenizer = llama2_tokenizer()
    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    tokenizer.pad_token = tokenizer.unk_token
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                          vision_feature_select_strategy="default", chat_template=chat_template)


def qwen2vl_processor(chat_template: str) -> ImageOnlyQwen2VLProcessor:
    return ImageOnlyQwen2VLProcessor(Qwen2VLImageProcessorPil(), qwen_tokenizer(), chat_template=chat_template)


FAMILIES = {  # name -> (processor builder, published level ids, the vocabulary's space marker)
    "mplug_owl2": (lambda: mplug_owl2_processor(), LLAMA_LEVEL_IDS, "▁"),
    "llava15-project-template": (lambda: llava15_processor(CHAT_TEMPLATES["llava"]), LLAMA_LEVEL_IDS, "▁"),
    "llava15-hub-layout": (lambda: llava15_processor(LLAVA15_LAYOUT), LLAMA_LEVEL_IDS, "▁"),
    "qwen2_vl-project-template": (lambda: qwen2vl_processor(CHAT_TEMPLATES["qwen2_vl"]), QWEN_LEVEL_IDS, "Ġ"),
    "qwen2_vl-hub-layout": (lambda: qwen2vl_processor(QWEN2VL_LAYOUT), QWEN_LEVEL_IDS, "Ġ"),
}


@functools.cache
def processor_of(family: str):
    """One processor per family for the whole module (the checks never change a processor)."""
    return FAMILIES[family][0]()


def check(processor, **kwargs):
    """What ``build_backbone`` does after loading: ``assemble_backbone``'s answer-word check."""
    stub = SimpleNamespace(config=SimpleNamespace(model_type="real-tokenizer-check"))
    return assemble_backbone(stub, processor, model_id="real-tokenizer-check", **kwargs)


def test_the_files_are_the_real_vocabularies():
    assert hashlib.md5(LLAMA_MODEL.read_bytes()).hexdigest() == "eeec4125e9c7560836b4873b6f8e3025"
    llama = llama2_tokenizer()
    assert len(llama) == 32000 and llama("Hello world")["input_ids"] == [1, 15043, 3186]
    qwen = qwen_tokenizer()
    assert len(_qwen_vocab_merges()[0]) == 151643 and qwen("Hello world")["input_ids"] == [9707, 1879]
    assert qwen.convert_tokens_to_ids(["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]) == [
        151652, 151653, 151655, 151656]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_level_words_are_single_tokens_at_the_answer_position(family):
    _, level_ids, space = FAMILIES[family]
    processor = processor_of(family)
    backbone = check(processor)
    assert backbone.level_token_ids == level_ids
    tokens = processor.tokenizer.convert_ids_to_tokens(level_ids)
    assert tokens == [space + word for word in LEVELS]
    # Through the real encoding: the token after the query is the level word of the training text.
    images = [Image.new("RGB", (40, 30), (200, 90, 20)), Image.new("RGB", (30, 40), (20, 90, 200))]
    examples = [{"images": images, "prompt": prompts.COMPARISON_PROMPT,
                 "answer": prompts.COMPARISON_ANSWER.format(level=word)} for word in LEVELS]
    train = backbone.encoder.encode_train(examples)
    query = backbone.encoder.encode_query(examples[:1])
    at_answer = train["input_ids"].gather(1, train["answer_positions"][:, None]).squeeze(1)
    assert at_answer.tolist() == level_ids
    assert (train["labels"].gather(1, train["answer_positions"][:, None]).squeeze(1) == at_answer).all()
    q = int(query["query_positions"][0])
    assert int(train["answer_positions"][0]) == q + 1
    assert query["input_ids"][0, : q + 1].tolist() == train["input_ids"][0, : q + 1].tolist()


class FedIds(torch.nn.Module):
    """Stands in for the network: keeps the token ids a comparator feeds it, answers zero logits."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.config = SimpleNamespace(model_type="real-tokenizer-check")
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # the comparator reads device and dtype here
        self.vocab_size, self.fed = vocab_size, []

    def forward(self, input_ids, logits_to_keep, **inputs):
        self.fed.append(input_ids)
        return SimpleNamespace(logits=torch.zeros(len(input_ids), len(logits_to_keep), self.vocab_size))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_comparators_query_is_the_training_sequence_up_to_the_level_word(family):
    """What ``Comparator.level_logits`` (and so every scorer) feeds the model ends exactly where
    training put the level word: a one-space change of the prompt or the answer prefix on
    either side moves the query off the training tokens, and this fails."""
    processor = processor_of(family)
    model = FedIds(len(processor.tokenizer))
    backbone = assemble_backbone(model, processor, model_id="real-tokenizer-check")
    first, second = Image.new("RGB", (40, 30), (200, 90, 20)), Image.new("RGB", (30, 40), (20, 90, 200))
    Comparator(backbone).level_logits([first], [second])
    (fed,) = model.fed
    train = backbone.encoder.encode_train([{"images": [first, second], "prompt": prompts.COMPARISON_PROMPT,
                                            "answer": prompts.COMPARISON_ANSWER.format(level="better")}])
    answer = int(train["answer_positions"][0])
    assert train["input_ids"][0, answer] == FAMILIES[family][1][LEVELS.index("better")]
    assert fed[0].tolist() == train["input_ids"][0, :answer].tolist()


def test_rating_words_are_single_tokens_too():
    for family in ("mplug_owl2", "qwen2_vl-project-template"):
        processor, space = processor_of(family), FAMILIES[family][2]
        ids = check(processor, rating=True).rating_token_ids
        assert processor.tokenizer.convert_ids_to_tokens(ids) == [space + w for w in prompts.RATING_LEVELS]


BREAKING = {  # a template change that breaks the single-token property, and the words it must name
    "no space before the word": ("The quality of the second image is{level}.", LEVELS),
    "the word in quotes": ('The quality of the second image is "{level}".', LEVELS),
}


@pytest.mark.parametrize("family", ["mplug_owl2", "llava15-hub-layout", "qwen2_vl-hub-layout"])
@pytest.mark.parametrize("change", list(BREAKING))
def test_a_template_change_that_splits_the_answer_word_fails(monkeypatch, family, change):
    template, named = BREAKING[change]
    processor = processor_of(family)
    monkeypatch.setattr(prompts, "COMPARISON_ANSWER", template)
    with pytest.raises(AnswerWordError) as error:
        check(processor)
    message = str(error.value)
    assert all(f"{word!r} ->" in message for word in named)


@pytest.mark.parametrize("family", ["mplug_owl2", "llava15-hub-layout", "qwen2_vl-hub-layout"])
def test_a_level_word_that_splits_fails_naming_its_pieces(monkeypatch, family):
    processor, space = processor_of(family), FAMILIES[family][2]
    vocab = processor.tokenizer.get_vocab()
    assert space + "subpar" not in vocab and space + "sub" in vocab  # so the word must split
    monkeypatch.setattr("c2s_lightning.models.backbones.LEVELS", (*LEVELS[:4], "subpar"))
    with pytest.raises(AnswerWordError) as error:
        check(processor)
    message = str(error.value)
    assert f"'subpar' -> ['{space}sub', 'par']" in message and "'inferior'" not in message
