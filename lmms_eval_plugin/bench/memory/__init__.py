"""`lvu-ext bench` (the default mode): stock transformers against lvu_ext, peak memory and prefill time per frame count."""
