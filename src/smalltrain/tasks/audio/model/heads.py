"""What both latent layouts share at their ends: the posterior's bounds and the output function.

The encoders clamp ``logvar`` to ``[LOGVAR_MIN, LOGVAR_MAX]`` and start it at ``LOGVAR_INIT``.
The decoders end in an output function (``apply_output``); the default is bounded,
``output_max * sigmoid`` with ``output_max = 2``: normalized mels are NOT capped at 1. 0 dB is
only the power reference and loud audio reaches about +40 dB (x up to ~1.5), so a plain sigmoid
cannot reach the loudest bins, which dominate spectral convergence. An unbounded linear output
can overshoot: the SC term works on ``10 ** (dB / 20)``, exponential in the output, and its
gradient explodes. ``output`` may be "softplus" or "linear" for experiments. The measurements
are in bench/README.md, "Audio quality".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LOGVAR_MIN = -20.0  # clamp logvar so exp() never under/overflows in float32 (std in [4.5e-5, 150])
LOGVAR_MAX = 10.0
# Initial logvar (std 0.05). With logvar 0 the sampled z is pure unit noise until the encoder
# learns to shrink it, and the decoder cannot tell chunks apart; the tiny beta (~1e-4) used here
# would narrow the posterior anyway.
LOGVAR_INIT = -6.0
OUTPUTS = ("sigmoid", "softplus", "linear")
INIT_LEVEL = 0.4  # initial output, normalized (-48 dB at floor -80): about the mean of real mels
# A gain model's output is relative to the chunk's peak (temporal.py): it spans
# [-(output_max - RELATIVE_HEADROOM), RELATIVE_HEADROOM], so a bin may sit up to 5 dB (0.0625 at
# floor -80) above the peak the encoder measured (the sigmoid reaches the peak itself at 0.97),
# and the loudest chunk's silence reaches the floor. The bound is what keeps validation SC from
# swinging: an overshoot of +5 dB costs at most 0.78 SC where +20 dB cost 9 (bench/README.md).
RELATIVE_HEADROOM = 0.0625


def check_output(output: str, output_max: float) -> None:
    """Raise ValueError for an unknown ``output`` or a ``output_max`` that is not > 0."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
    if not output_max > 0:
        raise ValueError(f"output_max must be > 0, not {output_max!r}")


def apply_output(out: Tensor, output: str, output_max: float) -> Tensor:
    """The decoder's output function applied to its last layer's values."""
    if output == "sigmoid":
        return output_max * torch.sigmoid(out)
    return F.softplus(out) if output == "softplus" else out


def preactivation(level: Tensor | float, output: str, output_max: float) -> Tensor:
    """The value before the output function that gives ``level`` after it."""
    y = torch.as_tensor(level, dtype=torch.float32)
    if output == "sigmoid":
        y = y.clamp(0.01 * output_max, 0.99 * output_max)
        return torch.log(y / (output_max - y))
    return torch.log(torch.expm1(y.clamp_min(1e-3))) if output == "softplus" else y
