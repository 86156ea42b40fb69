"""The precisions a scorer trains and evaluates in, and the autocast each runs under."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

# fp32 and tf32 run in full precision (tf32 is a flag on CUDA's matmuls, set by the trainer).
AUTOCAST_DTYPES = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """torch.autocast to ``dtype`` on ``device``'s type, or a context that changes nothing
    when ``dtype`` is None (full precision)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)
