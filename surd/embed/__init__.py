"""LLM layer-wise mean embeddings of prompts: the core of `surd embed` and `surd export prompt2vec`.

``core``: batching, early stop at block L, fp32 masked mean; ``cache``: the shared on-disk vector cache;
``export``: the official trainer's ``{prompt: tensor}`` file.
"""

from surd.embed.cache import EmbedCache
from surd.embed.core import Embedder, Embedding, EmbedSettings
from surd.embed.prompt2vec import export_prompt2vec, load_prompt2vec

__all__ = ["EmbedCache", "EmbedSettings", "Embedder", "Embedding", "export_prompt2vec", "load_prompt2vec"]
