"""lolcats: the lolcats.h reference (build/liblolcats.so, `make shared`) from
NumPy / PyTorch, for validating other backends of LoLCATs linear attention.

    ref = lolcats.hybrid_attention(q, k, v, wq, wk, wf, grads=dy)
    lolcats.assert_close(ref, {"y": my_y, "dq": my_dq}, ratio=0.005)
"""
from ._lib import LolcatsError, library_path, run_case
from .metrics import assert_close, compare, metrics
from .ops import (Result, hybrid_attention, linear_attention, mse_loss, softmax_attention,
                  xent_loss)
from .st import read_case, write_case

__all__ = ["LolcatsError", "library_path", "run_case", "assert_close", "compare", "metrics",
           "Result", "hybrid_attention", "linear_attention", "mse_loss", "softmax_attention",
           "xent_loss", "read_case", "write_case"]
