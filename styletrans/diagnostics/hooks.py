"""Forward hooks, each owned by a context manager that always removes it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

GUIDED_ACTIVATIONS = (nn.ReLU, nn.ReLU6)


class _StopForward(Exception):
    """Raised by a recording hook once every wanted layer has run."""


class Recording(dict):
    """``{layer: output}`` filled by ``record_activations`` hooks."""

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)``; a pass cut short after the last recorded layer returns None."""
        try:
            return fn(*args)
        except _StopForward:
            return None


@contextlib.contextmanager
def record_activations(modules: Mapping[str, nn.Module], *, stop: bool = False) -> Iterator[Recording]:
    """Record the outputs of ``modules`` (name -> module) during the passes run inside.

    With ``stop``, the pass is cut short as soon as all of them have run: run it
    through ``Recording.run``, which swallows the interruption.
    """
    recording = Recording()

    def hook_for(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            recording[name] = output
            if stop and len(recording) == len(modules):
                raise _StopForward

        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in modules.items()]
    try:
        yield recording
    finally:
        for handle in handles:
            handle.remove()


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad.clamp(min=0)


@contextlib.contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Guided backpropagation (Springenberg et al. 2015) through ``model``'s ReLU and
    ReLU6 modules: their own backward keeps only units with positive input, and the
    hook on their output keeps only positive gradients. Yields how many were guided.

    Functional ``F.relu`` calls cannot be hooked and stay plain.
    """
    relus = [m for m in model.modules() if isinstance(m, GUIDED_ACTIVATIONS)]
    if not relus:
        raise ValueError(f"{type(model).__name__} has no nn.ReLU/nn.ReLU6 modules to guide")
    handles = [m.register_forward_hook(lambda _m, _i, out: _PositiveGradient.apply(out)) for m in relus]
    try:
        yield len(relus)
    finally:
        for handle in handles:
            handle.remove()


def hook_count(model: nn.Module) -> int:
    """Forward, forward-pre and backward hooks registered anywhere in ``model``."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())
