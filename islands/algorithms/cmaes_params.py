"""CMA-ES strategy parameters for one population size: weights, learning rates, damping.

Kept apart from the update (`islands.algorithms.cmaes`) because they are a pure function of
(lambda, D, the covariance form, active or not), computed once per lambda and cached there.

Weights follow Hansen's tutorial: the mu = lambda // 2 best samples weigh log(mu + 1/2) - log(i),
normalised to sum 1, and move the mean. With `active` (2016 edition, eq. 49-53), the covariance
update also takes the lambda - mu worst samples with negative weights log((lambda + 1) / 2) -
log(i) (Jastrebski & Arnold 2006), scaled so their sum is the least of 1 + c1/c_mu, 1 + 2 mu_eff^- /
(mu_eff + 2) and (1 - c1 - c_mu) / (D c_mu): the covariance then shrinks along directions
that fail, which is what makes pycma's default fast on ill-conditioned problems (measured: a
single island on the ellipsoid needed ~1.4x pycma's evaluations without it). The mean's weights
are the same with or without `active`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Params:
    """Strategy parameters for one lambda (Hansen's tutorial, Table 1)."""

    mu: int
    weights: Tensor  # [mu] positive, sum 1: the mean's and the rank-mu update's best mu
    negative: Tensor  # [lambda - mu] <= 0 (all 0 without `active`): the rank-mu update's worst
    mueff: float
    cs: float
    ds: float
    cc: float
    c1: float
    cmu: float
    chi_n: float
    gap: int  # generations between eigendecompositions
    tol_window: int  # generations of best fitness that tolfun looks at
    stag_window: int


def strategy(lam: int, n: int, separable: bool, active: bool, device: torch.device | str,
             dtype: torch.dtype) -> Params:
    """The parameters of a CMA-ES with population `lam` in dimension `n`."""
    mu = max(1, lam // 2)
    w = np.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    w = w / w.sum()
    mueff = float(1.0 / (w * w).sum())
    cs = (mueff + 2.0) / (n + mueff + 5.0)
    c1 = 2.0 / ((n + 1.3) ** 2 + mueff)
    cmu = min(1.0 - c1, 2.0 * (mueff - 2.0 + 1.0 / mueff) / ((n + 2.0) ** 2 + mueff))
    if separable:  # Ros & Hansen 2008: diagonal learning can be faster
        c1, cmu = c1 * (n + 2.0) / 3.0, cmu * (n + 2.0) / 3.0
        c1, cmu = min(c1, 1.0), min(cmu, 1.0 - min(c1, 1.0))
    neg = np.minimum(math.log((lam + 1) / 2.0) - np.log(np.arange(mu + 1, lam + 1)), 0.0)
    if active and neg.size and neg.sum() < 0 and cmu > 0:
        mueff_neg = float(neg.sum() ** 2 / (neg * neg).sum())
        mass = min(1.0 + c1 / cmu, 1.0 + 2.0 * mueff_neg / (mueff + 2.0), (1.0 - c1 - cmu) / (n * cmu))
        neg = neg * max(mass, 0.0) / -neg.sum()
    else:
        neg = np.zeros(lam - mu)
    as_tensor = dict(device=device, dtype=dtype)
    return Params(
        mu=mu, weights=torch.as_tensor(w, **as_tensor), negative=torch.as_tensor(neg, **as_tensor), mueff=mueff,
        cs=cs, ds=1.0 + 2.0 * max(0.0, math.sqrt((mueff - 1.0) / (n + 1.0)) - 1.0) + cs,
        cc=(4.0 + mueff / n) / (n + 4.0 + 2.0 * mueff / n), c1=c1, cmu=cmu,
        chi_n=math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n)),
        gap=1 if separable else max(1, int(1.0 / ((c1 + cmu) * n * 10.0))),
        tol_window=10 + math.ceil(30.0 * n / lam), stag_window=120 + math.ceil(30.0 * n / lam),
    )
