"""How a benchmark's requests run: frame plans and decoding, the grouped order, background
prefetch, the video-feature and prefix-KV caches, chunked prefill, visual encoding, prompts.

Sits above `method` (the RoPE and pooling maths) and `checkpoints` (the families); knows
nothing of the harness's model class, of a run's bookkeeping, or of the CLIs.
"""
