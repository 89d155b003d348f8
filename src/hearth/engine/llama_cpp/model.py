"""A loaded GGUF model: weights, vocabulary, metadata, tokenizer. Read-only once loaded,
so tokenizing from the event loop while the scheduler decodes is safe."""

from __future__ import annotations

import ctypes
from pathlib import Path

from hearth.core.errors import InvalidRequest
from hearth.engine.llama_cpp.lib import cpu_has_amx, init_backend, llama

GGUF_MAGIC = b"GGUF"


class ModelFileError(ValueError):
    """The model file is missing, unreadable or not GGUF."""


def check_gguf(path: Path) -> None:
    """Cheap checks before a load, so a bad path is one clear line, not a C-level failure."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}") from None
    except IsADirectoryError:
        raise ModelFileError(f"model path is a directory, not a GGUF file: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"not a GGUF file: {path}")


class LlamaModel:
    def __init__(self, path: Path, *, debug: bool = False) -> None:
        check_gguf(path)
        init_backend(debug)
        params = llama.llama_model_default_params()
        params.use_mmap = True
        # llama.cpp's "extra buffer types" are its AMX buffers and repacked weights; the
        # AMX ones crash (lib.cpu_has_amx), so on an AMX CPU weights stay as the file has
        # them, as llama-server's --no-repack leaves them.
        params.use_extra_bufts = not cpu_has_amx()
        ptr = llama.llama_model_load_from_file(str(path).encode(), params)
        if not ptr:
            raise ModelFileError(f"llama.cpp could not load {path}")
        if llama.llama_model_is_recurrent(ptr) or llama.llama_model_is_hybrid(ptr):
            # The scheduler trims and shares sequences cell by cell (one cell a token),
            # which a recurrent state cannot do.
            llama.llama_model_free(ptr)
            raise ModelFileError(
                f"{path.name} is a recurrent or hybrid model (Mamba, RWKV, ...), which this "
                "engine does not run yet"
            )
        self.path = path
        self.ptr = ptr
        self.vocab = llama.llama_model_get_vocab(ptr)
        self.n_vocab: int = llama.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train: int = llama.llama_model_n_ctx_train(ptr)
        self.n_embd: int = llama.llama_model_n_embd(ptr)
        self.add_bos: bool = llama.llama_vocab_get_add_bos(self.vocab)
        self.bos_id: int = llama.llama_vocab_bos(self.vocab)
        self.eos_id: int = llama.llama_vocab_eos(self.vocab)
        self.metadata = self._read_metadata()
        self._pieces: dict[int, bytes] = {}
        self._special_pieces: dict[int, bytes] = {}  # as a grammar sees them
        self._eog: dict[int, bool] = {}
        # Special tokens whose text the reply shows (a reasoning family's markers).
        self.shown: frozenset[int] = frozenset()

    def _read_metadata(self) -> dict[str, str]:
        out: dict[str, str] = {}
        buf = ctypes.create_string_buffer(1 << 16)
        for i in range(llama.llama_model_meta_count(self.ptr)):
            n = llama.llama_model_meta_key_by_index(self.ptr, i, buf, len(buf))
            if n < 0:
                continue
            key = buf.value.decode("utf-8", "replace")
            if key.startswith("tokenizer.ggml."):  # the vocabulary itself: large, not metadata
                continue
            val = ctypes.create_string_buffer(1 << 20) if key.endswith("chat_template") else buf
            n = llama.llama_model_meta_val_str_by_index(self.ptr, i, val, len(val))
            if n >= 0:
                out[key] = val.value.decode("utf-8", "replace")
        return out

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    def token_text(self, token: int) -> str:
        return self.piece(token, special=True).decode("utf-8", "replace")

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (llama.llama_token * cap)()
        n = llama.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:  # the buffer was too small; -n is the size needed
            cap = -n
            buf = (llama.llama_token * cap)()
            n = llama.llama_tokenize(
                self.vocab, data, len(data), buf, cap, add_special, parse_special
            )
        if n < 0:
            raise InvalidRequest("the text could not be tokenized")
        return list(buf[:n])

    def detokenize(self, tokens: list[int]) -> str:
        """The text of in-vocabulary ids, special tokens written out (llama.cpp aborts
        on an id outside the vocabulary: check first). Whole, so that a character split
        over tokens comes out as one."""
        arr = (llama.llama_token * len(tokens))(*tokens)
        cap = 8 * len(tokens) + 16
        buf = ctypes.create_string_buffer(cap)
        n = llama.llama_detokenize(self.vocab, arr, len(tokens), buf, cap, False, True)
        if n < 0:  # the buffer was too small; -n is the size needed
            cap = -n
            buf = ctypes.create_string_buffer(cap)
            n = llama.llama_detokenize(self.vocab, arr, len(tokens), buf, cap, False, True)
        return buf.raw[: max(n, 0)].decode("utf-8", "replace")

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token; cached, since the scheduler asks for every sampled one."""
        cache = self._special_pieces if special else self._pieces
        cached = cache.get(token)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = llama.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        out = buf.raw[:n]
        cache[token] = out
        return out

    def is_eog(self, token: int) -> bool:
        known = self._eog.get(token)  # asked for every sampled token
        if known is None:
            known = self._eog[token] = bool(llama.llama_vocab_is_eog(self.vocab, token))
        return known

    def close(self) -> None:
        if self.ptr:
            llama.llama_model_free(self.ptr)
            self.ptr = None
