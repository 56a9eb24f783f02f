"""Which tensors a field uses that a solve would not differentiate (a silent gradient loss).

A field may close over tensors (``lambda t, y: torch.tanh(lin(y))``).  The adjoint modes
differentiate only ``y0``, a learnable ``alpha`` and the tensors listed in ``params``, so any
other tensor the field uses that requires grad would get no gradient, without a word; even
``direct`` differentiates only what the solve's autograd node lists.  The first evaluation of the
field in a solve runs with autograd on, and :func:`unreached` walks its graph back from the output:
a leaf that requires grad and is neither an input of the evaluation nor listed is one the solve
would lose; a listed non-leaf tensor (e.g. attention weights computed outside the solve from
parameters) stops the walk, since its own cotangent carries the gradient on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["message", "unreached"]


def unreached(output: torch.Tensor, inputs: Sequence[torch.Tensor],
              listed: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The leaves that require grad in ``output``'s graph which are neither in ``inputs`` nor
    ``listed``, nor behind a listed (or input) non-leaf tensor; in the order the walk meets
    them."""
    if output.grad_fn is None:
        return []
    known = [*inputs, *listed]
    leaves = {id(x) for x in known if x.grad_fn is None}
    stops = {x.grad_fn for x in known if x.grad_fn is not None}
    seen, found, todo = set(), [], [output.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen or node in stops:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # AccumulateGrad: a leaf
        if variable is not None:
            if id(variable) not in leaves:
                found.append(variable)
            continue
        todo.extend(child for child, _ in node.next_functions)
    return found


def message(found: Sequence[torch.Tensor]) -> str:
    """The one-line error for tensors a solve would not differentiate."""
    shapes = ", ".join(str(tuple(x.shape)) for x in found)
    return (f"func uses {len(found)} tensor(s) that require grad but would get no gradient "
            f"(shapes {shapes}): pass them in params= (or the non-leaf tensors func uses that "
            f"are computed from them), or make func an nn.Module that owns them "
            f"(params default to its parameters); params=() means none, on purpose")
