"""The four cases compared side by side, and the question every case answers."""

from __future__ import annotations

STOCK = "stock"
# lvu_ext model args per case; the defaults case passes none (rope_ext=vcwe, pooling=progressive).
LVU_CASES = {
    "lvu_ext_off": {"rope_ext": "none", "pooling": "native"},
    "lvu_ext_vcwe": {"rope_ext": "vcwe", "pooling": "native"},
    "lvu_ext_default": {},
    # defaults with chunked prefill: one chunk's activations, not the whole prompt's, set the peak
    "lvu_ext_default_chunked": {"prefill_chunk": 2048},
}
CASES = (STOCK, *LVU_CASES)
METHOD_OFF = "lvu_ext_off"
DEFAULT = "lvu_ext_default"
CHUNKED = "lvu_ext_default_chunked"

DESCRIPTION = {
    STOCK: "transformers processor + model.generate on all frames",
    "lvu_ext_off": "lvu_ext, rope_ext=none,pooling=native (method off)",
    "lvu_ext_vcwe": "lvu_ext, rope_ext=vcwe,pooling=native",
    "lvu_ext_default": "lvu_ext defaults (vcwe + progressive pooling)",
    CHUNKED: "lvu_ext defaults + prefill_chunk=2048",
}

CONTEXT = (
    "What is happening in the video?\nA. a red square moves\nB. nothing moves\nC. a circle appears\nD. the scene changes\n"
    "Answer with the option's letter from the given choices directly."
)
