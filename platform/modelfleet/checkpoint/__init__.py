"""Read a checkpoint without its weights: what ``fleet new`` needs to size and describe a model.

``config.json`` gives the attention shape, context and number format (``config``); the
safetensors headers give the exact weight bytes and parameter count (``tensors``); both come
from the hub through the real ``huggingface_hub`` client (``hub``) or from a local checkout
(``local``). Nothing here downloads a weight.
"""
