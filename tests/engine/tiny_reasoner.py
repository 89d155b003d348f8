"""A tiny reasoning model, written as a GGUF by the tests: no reasoning model small enough
ships in a package.

It is a one-block llama-architecture model with SmolLM2's vocabulary (read from the bundled
GGUF) plus the markers of the reasoning families, and a real chat template of the family
(tests/chat/templates). Its weights are random where they do not matter and chosen where
they do, so that the model is a deterministic *next-token table*:

- The attention and feed-forward output projections are zero, so each block adds nothing
  to the residual stream: what reaches the output head is the current token's embedding.
- A token named in the table has a one-hot embedding of its own dimension; every other
  token shares dimension 0 (the "anything else" row).
- The output head maps dimension d to the next token's logit: 20 for the table's next
  token, 10 for its fallback, 0 for everything else.

So greedy decoding follows the table from the last prompt token, whatever came before, in
well under a millisecond a step. `logit_bias` steers it like a real model: a bias of -100 on
the closing marker makes the fallback win, and the fallback of the last reasoning word loops
back into the reasoning ("think. think. …"), which is how tests reach a budget or max_tokens
inside the reasoning block.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from hearth.core.config import bundled_model_path

TEMPLATES = Path(__file__).parent.parent / "chat" / "templates"

N_EMBD = 64
N_FF = 128
N_HEAD = 4
CTX = 2048

# Markers appended to the vocabulary: (text, token type). Qwen3's GGUFs carry <think> as a
# user-defined token (written out in text); gpt-oss's and Magistral's markers are control
# tokens (llama.cpp leaves them out of text unless asked).
MARKERS: tuple[tuple[str, int], ...] = (
    ("<think>", gguf.TokenType.USER_DEFINED),
    ("</think>", gguf.TokenType.USER_DEFINED),
    ("<|channel|>", gguf.TokenType.CONTROL),
    ("<|message|>", gguf.TokenType.CONTROL),
    ("<|start|>", gguf.TokenType.CONTROL),
    ("<|end|>", gguf.TokenType.CONTROL),
    ("<|return|>", gguf.TokenType.CONTROL),
    # With <|return|> and <|call|> present, llama.cpp takes <|end|> off the end-of-generation
    # tokens, as for gpt-oss's own vocabulary.
    ("<|call|>", gguf.TokenType.CONTROL),
    ("[THINK]", gguf.TokenType.CONTROL),
    ("[/THINK]", gguf.TokenType.CONTROL),
)

# What the model writes, as (token, next, fallback) over token texts; "*" is any token the
# table does not name (the last prompt token, usually). EOS is SmolLM2's <|im_end|>.
THINK_SCRIPT: tuple[tuple[str, str, str | None], ...] = (
    ("*", "<think>", None),
    ("<think>", "Let", None),
    ("Let", "Ġme", None),
    ("Ġme", "Ġthink", None),
    ("Ġthink", ".", None),
    (".", "</think>", "Ġthink"),  # with </think> biased away: "think. think. …"
    ("</think>", "ĊĊ", None),
    ("ĊĊ", "Hello", None),  # also where Qwen3's thinking-off prompt ends
    ("Hello", "!", None),
    ("!", "<|im_end|>", None),
)
# A template that opens the block itself (DeepSeek-R1): the reply starts inside it.
OPEN_SCRIPT = (("*", "Let", None), *THINK_SCRIPT[2:])
# The bracket family (Magistral, Ministral 3 Reasoning): the answer follows [/THINK] at once.
BRACKETS_SCRIPT: tuple[tuple[str, str, str | None], ...] = (
    ("*", "[THINK]", None),
    ("[THINK]", "Let", None),
    *THINK_SCRIPT[2:5],  # Let me think
    (".", "[/THINK]", "Ġthink"),
    ("[/THINK]", "Hello", None),
    *THINK_SCRIPT[8:],  # Hello! and the end
)

REASONING = "Let me think."
ANSWER = "Hello!"


@dataclass(frozen=True)
class TinyReasoner:
    path: Path
    tokens: dict[str, int]  # token text → id, for logit_bias

    def id(self, text: str) -> int:
        return self.tokens[text]


def _vocab() -> tuple[list[str], list[int], list[str]]:
    reader = gguf.GGUFReader(bundled_model_path())
    tokens = list(reader.fields["tokenizer.ggml.tokens"].contents())
    types = [int(t) for t in reader.fields["tokenizer.ggml.token_type"].contents()]
    merges = list(reader.fields["tokenizer.ggml.merges"].contents())
    for text, kind in MARKERS:
        tokens.append(text)
        types.append(int(kind))
    return tokens, types, merges


def write_tiny_reasoner(
    path: Path,
    template: str,
    script: tuple[tuple[str, str, str | None], ...] = THINK_SCRIPT,
) -> TinyReasoner:
    """Writes the model to `path` with `template` (a file name under TEMPLATES, or the
    template's text) as its chat template."""
    source = TEMPLATES / template
    chat_template = source.read_text() if source.suffix == ".jinja" else template
    tokens, types, merges = _vocab()
    ids = {text: i for i, text in enumerate(tokens)}
    n_vocab = len(tokens)
    rng = np.random.default_rng(0)

    named = [t for t, _, _ in script if t != "*"]
    if len(named) >= N_EMBD:
        raise ValueError("the table names more tokens than the model has dimensions")
    dim = {ids[t]: d for d, t in enumerate(named, start=1)}
    embd = np.zeros((n_vocab, N_EMBD), dtype=np.float32)
    embd[:, 0] = 1.0
    for token, d in dim.items():
        embd[token] = 0.0
        embd[token, d] = 1.0
    # After the final RMS norm a one-hot row is sqrt(N_EMBD) = 8 in its dimension.
    head = np.zeros((n_vocab, N_EMBD), dtype=np.float32)
    for text, nxt, fallback in script:
        d = 0 if text == "*" else dim[ids[text]]
        head[ids[nxt], d] = 20.0 / 8
        if fallback is not None:
            head[ids[fallback], d] = 10.0 / 8

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("hearth-tiny-reasoner")
    writer.add_context_length(CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(1)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(chat_template)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    writer.add_tensor("token_embd.weight", embd.astype(np.float16))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", head.astype(np.float16))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", rand(N_EMBD, N_EMBD))
    writer.add_tensor("blk.0.attn_k.weight", rand(N_EMBD, N_EMBD))
    writer.add_tensor("blk.0.attn_v.weight", rand(N_EMBD, N_EMBD))
    writer.add_tensor("blk.0.attn_output.weight", np.zeros((N_EMBD, N_EMBD), np.float32))
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("blk.0.ffn_gate.weight", rand(N_FF, N_EMBD))
    writer.add_tensor("blk.0.ffn_up.weight", rand(N_FF, N_EMBD))
    writer.add_tensor("blk.0.ffn_down.weight", np.zeros((N_EMBD, N_FF), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return TinyReasoner(path, ids)
