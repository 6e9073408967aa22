"""Visual context window extension: RoPE frequencies for a longer visual context.

Implements METHOD.md section 1 (Wei & Chen, arXiv 2409.20018). Pure functions; the
model class applies the result with ``lmms_eval_plugin.patches.rope_window``.

Choices (where the paper is silent; all configurable through ``RopeSettings``):

* ``s = L_test / L_train`` with ``L_test`` = visual tokens of the request (``factor='auto'``)
  or a fixed number. ``s <= 1`` or ``variant='none'`` means: leave the model untouched.
* ``L_train`` (``visual_window``) per family is an assumption: 32 frames x tokens per
  frame after the model's native pooling (``FAMILY_VISUAL_WINDOW``).
* ``vcwe``: the paper's ramp, linear in ``r_i = L_train / lambda_i`` (not in the dimension
  index as transformers' yarn). Computed in float64 from the model's own float32
  frequencies, so untouched dims (gamma=1) are bit-identical to the stock ``inv_freq``.
* ``yarn``: transformers' own ``ROPE_INIT_FUNCTIONS['yarn']`` with
  ``original_max_position_embeddings = visual_window`` and ``factor = s``.
* ``yarn_language``: the same with the *language* window
  (``text_config.max_position_embeddings``) as original length, same ``s``.
  For both yarn variants ``beta_fast = beta`` and ``beta_slow = alpha`` are passed on;
  transformers rounds its band to whole dims (``truncate``) and treats ``beta_slow=0`` as 1.
* Attention temperature ``0.1 ln(s) + 1`` on cos/sin (``attn_scale='yarn'``, default) or
  none (``attn_scale='none'``, passed to transformers' yarn as ``attention_factor=1.0``).
* Checkpoints whose RoPE is already scaled (METHOD.md 1b). ``linear`` with factor f
  (LLaVA-NeXT-Video-7B-hf: 2.5): with ``base='checkpoint'`` (default) the extension starts
  from the checkpoint's own frequencies theta_i / f (so s <= 1 leaves the model exactly as
  transformers runs it); ``base='unscaled'`` drops f and starts from theta_i, and then
  s <= 1 gives theta_i, which is *not* the stock checkpoint. transformers' YaRN cannot
  start from theta_i / f, so ``yarn`` / ``yarn_language`` on a linear checkpoint need
  ``base='unscaled'``. Other scaled types (dynamic, yarn, llama3, longrope, ...) are
  refused with any variant but ``none`` (``check_checkpoint_rope``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

VARIANTS = ("none", "vcwe", "yarn", "yarn_language")
ATTN_SCALES = ("yarn", "none")
BASES = ("checkpoint", "unscaled")  # rope_base: what the extension starts from (METHOD.md 1b)

# Assumed visual training window L_train (tokens): 32 frames x tokens per frame after
# the family's native pooling (OneVision 14x14=196, NeXT-Video 12x12=144).
FAMILY_VISUAL_WINDOW = {"llava_onevision": 32 * 196, "llava_next_video": 32 * 144}


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class RopeSettings:
    """User-facing RoPE options; field names map to model args in the error messages."""

    variant: str  # rope_ext
    visual_window: int  # visual_window (L_train); see FAMILY_VISUAL_WINDOW
    factor: str | float = "auto"  # rope_factor
    alpha: float = 1.0  # rope_alpha
    beta: float = 32.0  # rope_beta
    attn_scale: str = "yarn"  # rope_attn_scale
    base: str = "checkpoint"  # rope_base

    def __post_init__(self):
        # Model args arrive as strings from the command line: accept numeric strings.
        if isinstance(self.factor, str) and self.factor != "auto":
            try:
                object.__setattr__(self, "factor", float(self.factor))
            except ValueError:
                pass  # reported by validate()
        self.validate()

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"rope_ext={self.variant!r} is not one of {', '.join(VARIANTS)}")
        if not _is_int(self.visual_window) or self.visual_window < 1:
            raise ValueError(f"visual_window={self.visual_window!r} must be an integer >= 1 (visual tokens)")
        if self.factor != "auto" and not (_is_real(self.factor) and self.factor > 0):
            raise ValueError(f"rope_factor={self.factor!r} must be 'auto' or a number > 0")
        if not (_is_real(self.alpha) and self.alpha >= 0):
            raise ValueError(f"rope_alpha={self.alpha!r} must be a number >= 0")
        if not (_is_real(self.beta) and self.beta > self.alpha):
            raise ValueError(f"rope_beta={self.beta!r} must be a number > rope_alpha={self.alpha!r}")
        if self.attn_scale not in ATTN_SCALES:
            raise ValueError(f"rope_attn_scale={self.attn_scale!r} is not one of {', '.join(ATTN_SCALES)}")
        if self.base not in BASES:
            raise ValueError(f"rope_base={self.base!r} is not one of {', '.join(BASES)}")


@dataclass
class RopeOverride:
    """What to put into the language model's rotary modules; inv_freq=None: change nothing."""

    inv_freq: torch.Tensor | None
    attention_scaling: float
    s: float
    variant: str


def stock_inv_freq(rope_theta: float, head_dim: int) -> torch.Tensor:
    # Same expression as transformers' default RoPE, so the result is bit-identical.
    return 1.0 / (rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))


def vcwe_inv_freq(
    rope_theta: float, head_dim: int, visual_window: int, s: float, alpha: float = 1.0, beta: float = 32.0,
    linear_factor: float | None = None,
) -> torch.Tensor:
    """theta'_i = (gamma_i + (1 - gamma_i)/s) * theta_i with gamma linear in r_i (float32).

    linear_factor f: start from the linear-scaled theta_i / f (METHOD.md 1b), computed as
    transformers' linear RoPE does, so gamma=1 dims (and s <= 1) keep those bit for bit."""
    theta32 = stock_inv_freq(rope_theta, head_dim)
    if linear_factor is not None:
        theta32 = theta32 / linear_factor
    if s <= 1:
        return theta32
    theta = theta32.double()
    r = visual_window * theta / (2 * math.pi)  # r_i = L / lambda_i, lambda_i = 2 pi / theta_i
    gamma = ((r - alpha) / (beta - alpha)).clamp(0.0, 1.0)
    # Written so that gamma=1 gives theta and gamma=0 gives theta/s without rounding.
    return (gamma * theta + (1.0 - gamma) * theta / s).float()


def scale_factor(settings: RopeSettings, n_visual_tokens: int) -> float:
    """s = L_test / L_train for factor='auto', else the fixed factor."""
    if settings.factor == "auto":
        if n_visual_tokens < 0:
            raise ValueError(f"n_visual_tokens={n_visual_tokens} must be >= 0")
        return n_visual_tokens / settings.visual_window
    return float(settings.factor)


def _rope_parameters(text_config) -> dict:
    params = getattr(text_config, "rope_parameters", None) or {}
    if "rope_theta" not in params and getattr(text_config, "rope_theta", None) is not None:
        params = {**params, "rope_theta": text_config.rope_theta}
    return params


def _rope_types(text_config) -> set[str]:
    params = getattr(text_config, "rope_parameters", None) or {}
    if params and all(isinstance(v, dict) for v in params.values()):  # nested per layer type
        return {v.get("rope_type", v.get("type", "default")) for v in params.values()}
    return {params.get("rope_type", params.get("type", "default"))}


def checkpoint_rope(text_config) -> tuple[str, float | None]:
    """(rope type, linear factor or None) of the language model as transformers reads it."""
    types = sorted(_rope_types(text_config))
    if len(types) != 1:
        return ", ".join(types), None
    params = getattr(text_config, "rope_parameters", None) or {}
    factor = params.get("factor") if types[0] == "linear" else None
    return types[0], (float(factor) if factor is not None else None)


def check_checkpoint_rope(text_config, settings: RopeSettings) -> None:
    """Refuse combinations that would scale a pre-scaled RoPE twice or without a written rule."""
    rope_type, factor = checkpoint_rope(text_config)
    if rope_type == "default" or settings.variant == "none" and settings.base == "checkpoint":
        return
    if rope_type == "linear" and factor is not None:
        if settings.variant in ("yarn", "yarn_language") and settings.base == "checkpoint":
            raise ValueError(
                f"rope_ext={settings.variant} cannot start from this checkpoint's linear-scaled RoPE (factor {factor:g}): "
                "transformers' YaRN computes from the unscaled frequencies. Use rope_ext=vcwe or rope_ext=none, "
                f"or rope_ext={settings.variant},rope_base=unscaled (YaRN from the unscaled frequencies, dropping the "
                "checkpoint's linear factor)"
            )
        return
    raise ValueError(
        f"the checkpoint's language model already uses RoPE scaling (rope_type={rope_type}) and lvu_ext has no rule "
        f"to compose rope_ext={settings.variant!r}" + (f",rope_base={settings.base}" if settings.base != "checkpoint" else "")
        + " with it (only linear scaling is composed, METHOD.md 1b): use rope_ext=none,rope_base=checkpoint"
    )


def _head_dim(text_config) -> int:
    return getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads


def _yarn(text_config, base: float, s: float, original: int, settings: RopeSettings):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = copy.deepcopy(text_config)  # never touch the live model's config
    params = {
        "rope_type": "yarn",
        "rope_theta": base,
        "factor": s,
        "original_max_position_embeddings": original,
        "beta_fast": settings.beta,
        "beta_slow": settings.alpha,
    }
    if settings.attn_scale == "none":
        params["attention_factor"] = 1.0
    cfg.rope_parameters = params
    if hasattr(cfg, "original_max_position_embeddings"):  # Phi3-style field wins in transformers
        cfg.original_max_position_embeddings = original
    inv_freq, attention_scaling = ROPE_INIT_FUNCTIONS["yarn"](cfg)
    return inv_freq.float(), float(attention_scaling)


def compute_rope_override(text_config, settings: RopeSettings, n_visual_tokens: int) -> RopeOverride:
    """RoPE frequencies and cos/sin scale for one request with n_visual_tokens visual tokens."""
    s = scale_factor(settings, n_visual_tokens)
    check_checkpoint_rope(text_config, settings)
    _, factor = checkpoint_rope(text_config)
    # rope_base=unscaled on a linear checkpoint: theta_i even when nothing is extended.
    drop_linear = settings.base == "unscaled" and factor is not None
    base = _rope_parameters(text_config).get("rope_theta")
    if (settings.variant == "none" or s <= 1) and not drop_linear:
        return RopeOverride(None, 1.0, s, settings.variant)
    if base is None:
        raise ValueError("cannot read rope_theta from the language model config (per-layer RoPE is not supported)")
    head_dim = _head_dim(text_config)
    if settings.variant == "none" or s <= 1:
        return RopeOverride(stock_inv_freq(base, head_dim), 1.0, s, settings.variant)
    if settings.variant == "vcwe":
        linear = factor if settings.base == "checkpoint" else None
        inv_freq = vcwe_inv_freq(base, head_dim, settings.visual_window, s, settings.alpha, settings.beta, linear)
        scaling = 0.1 * math.log(s) + 1.0 if settings.attn_scale == "yarn" else 1.0
        return RopeOverride(inv_freq, scaling, s, settings.variant)
    original = settings.visual_window if settings.variant == "yarn" else text_config.max_position_embeddings
    inv_freq, scaling = _yarn(text_config, base, s, original, settings)
    return RopeOverride(inv_freq, scaling, s, settings.variant)
