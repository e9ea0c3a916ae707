"""Writes a tiny random-weight model that carries a real tokenizer.

    PYTHONPATH=llama.cpp/gguf-py python3 tinymodel.py ggml-vocab-qwen2.gguf qwen2-tiny.gguf

The vocabulary file (one of llama.cpp's models/ggml-vocab-*.gguf, which hold
no tensors) gives every tokenizer.* key: the tokens, their types, merges,
special token ids and chat template. The transformer is a 2-layer, 64-wide
llama with weights drawn from a fixed seed, so the same vocabulary always
gives the same file. Its output head is not tied to the embedding: a tied
head makes a random model repeat its input token forever. The text it writes
is gibberish, but tokenization, special tokens, detokenization and the
server's streaming are the real thing.
"""

import sys

import numpy as np

import gguf

ARCH = "llama"
N_EMBD = 64
N_HEAD = 4
N_LAYER = 2
N_FF = 128
N_CTX = 4096


def copy_tokenizer(reader, writer):
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main = field.types[0]
        if main == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), main, sub_type=field.types[1])
        else:
            writer.add_key_value(key, field.contents(), main)


def main(vocab_path, out_path):
    reader = gguf.GGUFReader(vocab_path)
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].contents())
    name = reader.fields["general.name"].contents()

    writer = gguf.GGUFWriter(out_path, ARCH)
    writer.add_name(f"{name}-tiny-random")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    copy_tokenizer(reader, writer)

    rng = np.random.default_rng(20240613)

    def matrix(rows, cols, std=None):
        # Scaled so that each layer changes the residual stream as much as
        # the embedding does: the next token then depends on the context,
        # not only on the last token.
        std = std if std is not None else 1.0 / np.sqrt(cols)
        return (rng.standard_normal((rows, cols)) * std).astype(np.float16)

    def ones(n):
        return np.ones(n, dtype=np.float32)

    writer.add_tensor("token_embd.weight", matrix(n_vocab, N_EMBD, std=1.0))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", ones(N_EMBD))
        writer.add_tensor(p + "attn_q.weight", matrix(N_EMBD, N_EMBD))
        writer.add_tensor(p + "attn_k.weight", matrix(N_EMBD, N_EMBD))
        writer.add_tensor(p + "attn_v.weight", matrix(N_EMBD, N_EMBD))
        writer.add_tensor(p + "attn_output.weight", matrix(N_EMBD, N_EMBD))
        writer.add_tensor(p + "ffn_norm.weight", ones(N_EMBD))
        writer.add_tensor(p + "ffn_gate.weight", matrix(N_FF, N_EMBD))
        writer.add_tensor(p + "ffn_up.weight", matrix(N_FF, N_EMBD))
        writer.add_tensor(p + "ffn_down.weight", matrix(N_EMBD, N_FF))
    writer.add_tensor("output_norm.weight", ones(N_EMBD))
    writer.add_tensor("output.weight", matrix(n_vocab, N_EMBD))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tinymodel.py VOCAB.gguf OUT.gguf")
    main(sys.argv[1], sys.argv[2])
