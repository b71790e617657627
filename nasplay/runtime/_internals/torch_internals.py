"""The PyTorch one-shot engine's Nesterov update
(``nasplay.scorers.oneshot.engine_torch.MaskedSGD``) on all of a step's unmasked tensors at once.

Why: a step updates hundreds of small tensors; PyTorch's multi-tensor kernels
(``torch._foreach_mul_``, ``torch._foreach_add_``, what ``torch.optim.SGD(foreach=True)`` runs)
do each op for the whole list in one call (on a GPU, a few kernel launches instead of one per
tensor and op).

Private parts used (hence this module): ``torch._foreach_mul_`` and ``torch._foreach_add_``,
written against PyTorch 2.13 (the checked part: that both are there, as they have been through
PyTorch 2.x, which ``torch.optim`` itself relies on). Where they are not: a loop over the
tensors with the same in-place ops (the same arithmetic, one small kernel per tensor and op).
"""

from __future__ import annotations

_FOREACH = ("_foreach_mul_", "_foreach_add_")


def nesterov_sgd_(params, slots, grads, lr: float, momentum: float, decay: float) -> None:
    """In place, for each ``(param, slot, grad)``: ``param *= 1 - lr * decay`` (if ``decay``),
    ``slot = momentum * slot - lr * grad``, ``param += momentum * slot - lr * grad`` (Keras's SGD
    with Nesterov momentum and decoupled weight decay). Call under ``torch.no_grad()``."""
    import torch

    if not all(hasattr(torch, name) for name in _FOREACH):
        public_nesterov_sgd_(params, slots, grads, lr, momentum, decay)
        return
    if decay:
        torch._foreach_mul_(params, 1.0 - lr * decay)
    torch._foreach_mul_(slots, momentum)
    torch._foreach_add_(slots, grads, alpha=-lr)
    torch._foreach_add_(params, slots, alpha=momentum)
    torch._foreach_add_(params, grads, alpha=-lr)


def public_nesterov_sgd_(params, slots, grads, lr: float, momentum: float, decay: float) -> None:
    """:func:`nesterov_sgd_` one tensor at a time with public ops (the fallback)."""
    for param, slot, grad in zip(params, slots, grads):
        if decay:
            param.mul_(1.0 - lr * decay)
        slot.mul_(momentum)
        slot.add_(grad, alpha=-lr)
        param.add_(slot, alpha=momentum)
        param.add_(grad, alpha=-lr)
