"""lvu_ext: an lmms-eval plugin for long-video understanding with tuning-free
visual context window extension and progressive pooling."""

__version__ = "0.1.0"
