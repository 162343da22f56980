"""Genetic operators as pure tensor functions.

Every function takes tensors and an explicit `torch.Generator`, returns new tensors and never
modifies its inputs, so a seed determines a run and the same code runs on CPU or CUDA. Each
one works on the whole population at once (docs/DESIGN.md, "Vectorised"): no loop over individuals.

NaN fitness is treated as the worst possible value everywhere (`rankable`).
"""
from __future__ import annotations

import torch
from torch import Tensor


def rankable(fitness: Tensor) -> Tensor:
    """Fitness with NaN replaced by -inf, so a NaN individual never wins a comparison."""
    return torch.nan_to_num(fitness, nan=float("-inf"))


def tournament(fitness: Tensor, n: int, size: int, gen: torch.Generator) -> Tensor:
    """Indices of `n` tournament winners, each the best of `size` uniform draws."""
    entrants = torch.randint(
        fitness.shape[0], (n, size), generator=gen, device=fitness.device
    )
    winner = rankable(fitness)[entrants].argmax(dim=1, keepdim=True)
    return entrants.gather(1, winner).squeeze(1)


def top_k(fitness: Tensor, k: int) -> Tensor:
    """Indices of the `k` best individuals, best first."""
    return torch.topk(rankable(fitness), k).indices


def sbx(a: Tensor, b: Tensor, eta: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Simulated binary crossover (Deb & Agrawal): children spread around the parents.

    Each gene is recombined with probability 1/2 (otherwise copied), and the two children's
    values of a gene are exchanged with probability 1/2. Without that exchange a large `eta`
    makes children near-copies of their own parent and no building blocks ever mix (measured:
    Rastrigin D=30 stalled near -100 where DEAP's SBX reaches -20).
    """
    u = torch.rand(a.shape, generator=gen, device=a.device, dtype=a.dtype)
    power = 1.0 / (eta + 1.0)
    beta = torch.where(u <= 0.5, (2.0 * u) ** power, (0.5 / (1.0 - u).clamp_min(1e-12)) ** power)
    recombine = torch.rand(a.shape, generator=gen, device=a.device) < 0.5
    beta = torch.where(recombine, beta, torch.ones_like(beta))
    mid, half = 0.5 * (a + b), 0.5 * (a - b)
    c1, c2 = mid + beta * half, mid - beta * half
    exchange = torch.rand(a.shape, generator=gen, device=a.device) < 0.5
    return torch.where(exchange, c2, c1), torch.where(exchange, c1, c2)


def blx_alpha(a: Tensor, b: Tensor, alpha: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """BLX-alpha: each gene drawn uniformly from the parents' interval widened by alpha."""
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    span = high - low
    low, span = low - alpha * span, span * (1.0 + 2.0 * alpha)
    u1 = torch.rand(a.shape, generator=gen, device=a.device, dtype=a.dtype)
    u2 = torch.rand(a.shape, generator=gen, device=a.device, dtype=a.dtype)
    return low + u1 * span, low + u2 * span


def uniform_crossover(a: Tensor, b: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each gene comes from either parent with probability 1/2."""
    mask = torch.rand(a.shape, generator=gen, device=a.device) < 0.5
    return torch.where(mask, a, b), torch.where(mask, b, a)


def gaussian_mutation(
    x: Tensor, rate: float, sigma: Tensor, gen: torch.Generator
) -> Tensor:
    """Add N(0, sigma) noise to each gene with probability `rate`; `sigma` broadcasts per gene."""
    hit = torch.rand(x.shape, generator=gen, device=x.device) < rate
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return x + hit * noise * sigma


def clip(x: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """Bound handling by clamping onto the box."""
    return torch.clamp(x, lower, upper)


def reflect(x: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """Bound handling by mirroring at the walls, which keeps mass off the box's faces."""
    width = upper - lower
    y = torch.remainder(x - lower, 2.0 * width)
    return lower + torch.where(y > width, 2.0 * width - y, y)


BOUND_HANDLERS = {"clip": clip, "reflect": reflect}


def lognormal_step(step: Tensor, tau: float, floor: float, gen: torch.Generator,
                   cap: float = float("inf")) -> Tensor:
    """Self-adaptation of step sizes: each multiplied by exp(tau * N(0, 1)), kept in [floor, cap].

    The floor keeps a converged population able to move at all; without it steps underflow
    to 0 in a few hundred generations of bad luck. The cap keeps a step from outgrowing the
    box, where every move would be clipped onto a face.
    """
    noise = torch.randn(step.shape, generator=gen, device=step.device, dtype=step.dtype)
    return (step * torch.exp(tau * noise)).clamp(floor, cap)

