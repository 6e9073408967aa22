"""The supported architectures (families: which transformers class, visual window, grid)
and the embedded tiny random checkpoints that mirror the published llava-hf ones."""
