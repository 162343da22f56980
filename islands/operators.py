"""Genetic operators as pure tensor functions.

Every function takes tensors and an explicit `torch.Generator`, returns new tensors and never
modifies its inputs, so a seed determines a run and the same code runs on CPU or CUDA. Each
one works on the whole population at once (docs/DESIGN.md, "Vectorised"): no loop over individuals.

NaN fitness is treated as the worst possible value everywhere (`rankable`).
"""
from __future__ import annotations

import math

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

    Cost, which dominates a GA generation at small sizes and in float64: the spread factor is
    drawn and raised to its power in float32 whatever the run's dtype (its randomness needs no
    more digits; the parents and children stay in their dtype, and float64 `pow` costs twice
    float32's), with one `pow` over the whole array, and both fair coins come from one uniform
    draw (its first two bits are independent).
    """
    u = torch.rand(a.shape, generator=gen, device=a.device)
    base = torch.where(u <= 0.5, 2.0 * u, 0.5 / (1.0 - u).clamp_min(1e-12))
    beta = base.pow_(1.0 / (eta + 1.0))
    coins = torch.rand(a.shape, generator=gen, device=a.device)
    beta = torch.where(coins < 0.5, beta, 1.0)  # recombined, else copied
    signed = torch.where(torch.frac(2.0 * coins) < 0.5, -beta, beta).to(a.dtype)  # exchanged: c1 <-> c2
    mid, spread = 0.5 * (a + b), signed * (0.5 * (a - b))
    return mid + spread, mid - spread


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


DENSE_RATE = 0.2  # at or above this mutation rate every gene gets a draw ...
SPARSE_MIN = 4096  # ... and below this many genes (then a few array ops cost less than finding positions)


def bernoulli_positions(n: int, rate: float, gen: torch.Generator, device: torch.device | str = "cpu",
                        chunk: int | None = None) -> Tensor:
    """The flat indices, ascending, of the successes among `n` independent Bernoulli(`rate`)
    trials, drawn by their geometric gaps: O(n * rate) random numbers instead of `n`. At the
    GA's default rate 1/D that is one draw per mutated gene instead of one per gene."""
    if n <= 0 or not rate > 0.0:  # NaN too: no success
        return torch.empty(0, dtype=torch.long, device=device)
    if rate >= 1.0:
        return torch.arange(n, device=device)
    log_miss = math.log1p(-rate)
    mean = n * rate
    if chunk is None:  # gaps per draw: one draw suffices but for ~3e-5 of calls
        chunk = int(mean + 4.0 * math.sqrt(mean) + 16)
    found, last = [], -1
    while True:
        u = 1.0 - torch.rand(chunk, generator=gen, device=device, dtype=torch.float64)  # (0, 1]
        gaps = (torch.log(u) / log_miss).floor_().clamp_(max=n) + 1  # P(gap > m) = (1 - rate)^m
        pos = last + gaps.long().cumsum(0)
        inside = pos[pos < n]
        found.append(inside)
        if inside.numel() < chunk:
            return torch.cat(found) if len(found) > 1 else inside
        last = int(pos[-1])


def gaussian_mutation(
    x: Tensor, rate: float, sigma: Tensor, gen: torch.Generator
) -> Tensor:
    """Add N(0, sigma) noise to each gene with probability `rate`; `sigma` broadcasts per gene.

    On large arrays at a small rate only the mutated genes draw noise (`bernoulli_positions`):
    a full array of normal draws in float64 cost more than the rest of a GA generation at
    D=100, P=500. The draws differ between the two paths, the distribution does not.
    """
    if rate >= DENSE_RATE or x.numel() < SPARSE_MIN or x.dim() != 2:
        hit = torch.rand(x.shape, generator=gen, device=x.device) < rate
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        return x + hit * noise * sigma
    pos = bernoulli_positions(x.numel(), rate, gen, x.device)
    noise = torch.randn(pos.shape, generator=gen, device=x.device, dtype=x.dtype)
    scale = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if scale.numel() == 1:
        scale = scale.reshape(())
    else:  # per gene [D] or [1, D], or per child and gene [P, D] / [P, 1]
        rows, cols = pos // x.shape[1], pos % x.shape[1]
        scale = torch.broadcast_to(scale, x.shape)[rows, cols]
    y = x.clone(memory_format=torch.contiguous_format)
    y.view(-1).index_add_(0, pos, noise * scale)
    return y


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

