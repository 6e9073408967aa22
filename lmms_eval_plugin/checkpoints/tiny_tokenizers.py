"""Tiny tokenizers that behave like the real checkpoints' ones, built offline.

They are transformers' own tokenizer classes (`Qwen2Tokenizer`, `LlamaTokenizer`) fed a
small learned vocabulary, so pre-tokenization, special-token handling, BOS/EOS and
decoding are the classes' code, exactly what the real checkpoints get. Only the learned
vocabulary is small; it is padded with filler pieces up to the real size so that every
special token keeps its published id (the model's embedding rows are indexed by them).

- Qwen2 (llava-hf/llava-onevision-qwen2-7b-ov-hf): byte-level BPE, no BOS, 151643 regular
  ids, then `<|endoftext|>` 151643, `<|im_start|>` 151644, `<|im_end|>` 151645 (EOS), and
  the two tokens the llava-hf conversion adds, `<image>` 151646, `<video>` 151647
  (transformers' convert_llava_onevision_weights_to_hf.py: `add_tokens(<image>)`, then `<video>`).
- Llama/Vicuna (llava-hf/LLaVA-NeXT-Video-7B-hf): SentencePiece-style BPE with byte
  fallback, `<unk>` 0, `<s>` 1 (BOS, added to every encoding), `</s>` 2 (EOS), byte pieces
  `<0x00>`..`<0xFF>` at 3..258, 32000 regular ids, then `<video>` 32000 and `<image>` 32001
  (convert_llava_next_video_weights_to_hf.py adds `<video>` first). transformers' own
  integration test encodes "USER: <video>\\nWhy is this video funny? ASSISTANT:" with the
  real tokenizer as [1, ..., 32000, 13, ...]: BOS first, "\\n" as byte piece <0x0A> = 13.
"""

from __future__ import annotations

import json

# Text the tiny vocabularies are learned from: the words of the prompts the tests and
# benchmarks send, so prompts tokenize into a few pieces rather than bytes.
_CORPUS = [
    "What is happening in the video? Answer with the option's letter from the given choices directly.",
    "Only give the best option. Best option: (A) (B) (C) (D) (E) (F) A. B. C. D. E. F.",
    "What colour is the moving square? The square is red. The square is green. The square is blue. The square is yellow.",
    "Which way does the block move? left right How many objects are there? Select the best answer.",
    "USER: ASSISTANT: system user assistant You are a helpful assistant.",
    "0 1 2 3 4 5 6 7 8 9 yes no color count action order scene event topic needle anomaly",
]

QWEN2_REGULAR_IDS = 151643  # Qwen2's byte-level BPE vocabulary before its special tokens
QWEN2_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
LLAMA_REGULAR_IDS = 32000  # Llama-2 / Vicuna SentencePiece vocabulary


def _learned_bpe(pre_tokenizer, vocab_size: int, **trainer_kwargs) -> tuple[list[str], list[tuple[str, str]]]:
    """Pieces (in learned order) and merges of a small BPE trained on _CORPUS."""
    from tokenizers import Tokenizer, models, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, **trainer_kwargs)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    pieces = [p for p, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return pieces, merges


def _pad_vocab(vocab: dict[str, int], size: int, prefix: str) -> None:
    # Filler pieces no merge produces: encoding never yields them, decoding gives distinct
    # words, so a random model's answers stay comparable token for token.
    i = 0
    while len(vocab) < size:
        vocab.setdefault(f"{prefix}w{i:x}", len(vocab))
        i += 1


def qwen2_tokenizer():
    """Qwen2-style tokenizer with the OneVision conversion's added tokens."""
    from tokenizers import AddedToken, Regex, pre_tokenizers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    pre = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    pieces, merges = _learned_bpe(pre, 600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    vocab = {p: i for i, p in enumerate(pieces)}
    _pad_vocab(vocab, QWEN2_REGULAR_IDS, "Ġ")
    for token in QWEN2_SPECIALS:  # at their real ids, right after the regular vocabulary
        vocab[token] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None)
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN2_SPECIALS], special_tokens=True)
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in ("<image>", "<video>")], special_tokens=True)
    return tok


def llama_tokenizer():
    """Llama/Vicuna-style tokenizer (BOS added) with the NeXT-Video conversion's added tokens."""
    from tokenizers import AddedToken, pre_tokenizers
    from transformers import LlamaTokenizer

    # Learned per word (split=True) like SentencePiece pieces; the class itself encodes
    # with its own Metaspace settings.
    pieces, merges = _learned_bpe(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True), 500)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    _pad_vocab(vocab, LLAMA_REGULAR_IDS, "▁")
    tok = LlamaTokenizer(vocab=vocab, merges=merges, pad_token="<unk>", add_bos_token=True, add_eos_token=False)
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in ("<video>", "<image>")], special_tokens=True)
    return tok
