"""Full-softmax cross entropy fused with its output layer, computed in row chunks.

BERT4Rec's loss at paper scale is a softmax over 56k tracks for ~7,700 masked positions
per batch: a [7,700 x 56,193] logit matrix (1.7 GB in float32) that the plain
`cross_entropy(hidden @ items.T)` keeps for backward, together with its log-softmax and
their gradients, and walks through several times. Here each chunk of rows is scored,
turned into its loss and its gradient (softmax - one-hot) at once, and the gradient is
pushed straight through the output layer (into the hidden states, the item matrix and the
bias), so only one chunk of logits ever exists. Same loss and gradients as the plain
computation (tested); 3-4x less time in the softmax and ~5 GB less peak memory at paper
scale.

A row may carry several targets (SASRec's `targets_ahead`: one hidden state, the next k
tracks): its k cross-entropy terms share one softmax, so the logits are computed once per
row, not once per target, and the gradient is k * softmax minus the k one-hots.
"""

from __future__ import annotations

import torch

# Logit cells per chunk: 16M float32 = 64 MB, ~290 rows at 56k tracks.
CHUNK_CELLS = 1 << 24
# A missing target of a row with several (as F.cross_entropy's ignore_index)
IGNORE = -100


class LinearCrossEntropy(torch.autograd.Function):
    """mean over (row, target) pairs of -log softmax(hidden @ weight.T + bias)[target];
    targets [rows] (one each) or [rows, k] (IGNORE where a row has fewer than k)."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor, bf16: bool) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            h = hidden.float()
            w = weight.float()
            mm_dtype = torch.bfloat16 if bf16 else torch.float32
            w_mm = w.to(mm_dtype)
            n_rows = h.shape[0]
            step = max(1, CHUNK_CELLS // max(1, w.shape[0]))
            grad_h = torch.empty_like(h)
            grad_w = torch.zeros_like(w)
            grad_b = torch.zeros(w.shape[0], dtype=torch.float32, device=w.device) if bias is not None else None
            loss = torch.zeros((), dtype=torch.float64, device=h.device)
            need_grads = any(ctx.needs_input_grad[:3])
            # one target per row is the k = 1 case: every step below is then exact as before
            targets = targets[:, None] if targets.dim() == 1 else targets
            present = targets != IGNORE
            if not bool(present.any(dim=1).all()):
                raise ValueError("linear_cross_entropy: every row needs at least one target (drop the rows without)")
            n_terms = int(present.sum())
            safe_targets = targets.clamp(min=0)
            several = targets.shape[1] > 1
            for start in range(0, n_rows, step):
                rows = slice(start, start + step)
                h_mm = h[rows].to(mm_dtype)
                logits = (h_mm @ w_mm.T).float()
                if bias is not None:
                    logits += bias.float()
                t, here = safe_targets[rows], present[rows]
                counts = here.sum(dim=1).float()
                picked = (logits.gather(1, t) * here).sum(dim=1)
                # one exp pass: shift by the row max, exponentiate in place, normalise
                row_max = logits.amax(dim=1)
                logits.sub_(row_max[:, None]).exp_()
                total = logits.sum(dim=1)
                loss += (counts * (row_max + total.log()) - picked).sum(dtype=torch.float64)
                if not need_grads:
                    continue
                # logits become d loss_sum / d logits = count * softmax - the one-hots, in place
                logits.div_(total[:, None])
                if several:
                    logits.mul_(counts[:, None])
                logits.scatter_add_(1, t, -here.float())
                g = logits.to(mm_dtype)
                grad_h[rows] = (g @ w_mm).float()
                grad_w += (g.T @ h_mm).float()
                if grad_b is not None:
                    grad_b += logits.sum(dim=0)
            scale = 1.0 / max(1, n_terms)
        ctx.save_for_backward(grad_h, grad_w, grad_b if grad_b is not None else torch.empty(0))
        ctx.scale = scale
        ctx.has_bias = bias is not None
        ctx.dtypes = (hidden.dtype, weight.dtype)
        return (loss * scale).to(torch.float32)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        factor = grad_out * ctx.scale
        return (
            (grad_h * factor).to(ctx.dtypes[0]),
            (grad_w * factor).to(ctx.dtypes[1]),
            grad_b * factor if ctx.has_bias else None,
            None,
            None,
        )


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, bias: torch.Tensor | None = None, bf16: bool = False
) -> torch.Tensor:
    """`F.cross_entropy(hidden @ weight.T + bias, targets)` without the full logit matrix.

    `targets` [rows], or [rows, k] for k targets per row (IGNORE for absent ones; every row
    needs one): the mean over all present (row, target) pairs, as `F.cross_entropy` of the
    rows repeated once per target, with one softmax per row. bf16=True multiplies in
    bfloat16 (softmax, loss and accumulation in float32)."""
    if hidden.shape[0] == 0:
        raise ValueError("linear_cross_entropy needs at least one row")
    return LinearCrossEntropy.apply(hidden, weight, bias, targets, bf16)
