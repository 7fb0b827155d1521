"""Maximum a posteriori scores from a matrix of pairwise win probabilities.

For ``P[i][j] = P(item i beats item j)`` the scores ``q`` maximise

    L(q) = sum_{i != j} P_ij log F(q_i - q_j) - sum_i q_i^2 / 2,

with ``F`` the standard normal CDF (Thurstone Case V, the paper's choice) or the logistic
function (Bradley-Terry). ``log F`` is concave for both, so ``L`` is strictly concave and its
unique maximum is found exactly by Newton's method with analytic gradient and Hessian and a
backtracking line search, in float64, for a whole batch of matrices at once. (The authors'
release instead ran 100 Adam steps from a random start, per test image.)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
# Below -_TAIL the ratio phi/Phi is taken from Laplace's continued fraction; 40 terms are exact
# to double precision there (checked against mpmath), and the direct formula loses nothing above.
_TAIL = 4.0
_CF_TERMS = 40
_ARMIJO = 1e-4
_MAX_HALVINGS = 60
_QUADRATIC = 1e-8

# d/dx log F(x) and d^2/dx^2 log F(x) for each link, elementwise.
Derivatives = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _normal_tail_gap(t: torch.Tensor) -> torch.Tensor:
    """``phi(t)/Q(t) - t`` for large ``t`` (``Q = 1 - Phi``), without cancellation."""
    acc = torch.zeros_like(t)
    for k in range(_CF_TERMS, 1, -1):
        acc = k / (t + acc)
    return 1.0 / (t + acc)


def _log_ndtr(x: torch.Tensor) -> torch.Tensor:
    # log(ndtr) is about twice as fast as torch's log_ndtr and as accurate above the tail.
    out = torch.log(torch.special.ndtr(x))
    tail = x < -_TAIL
    if tail.any():
        out = out.masked_scatter(tail, torch.special.log_ndtr(x[tail]))
    return out


def _normal_derivatives(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # r = phi/Phi (inverse Mills ratio of -x), s = -r (x + r); for very negative x both r and
    # -x are huge and x + r is their tiny difference, so it comes from the continued fraction.
    r = torch.exp(-0.5 * x * x) * _INV_SQRT_2PI / torch.special.ndtr(x)
    gap = x + r
    tail = x < -_TAIL
    if tail.any():
        t = -x[tail]
        tail_gap = _normal_tail_gap(t)
        gap = gap.masked_scatter(tail, tail_gap)
        r = r.masked_scatter(tail, t + tail_gap)
    return r, -r * gap


def _logistic_derivatives(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.sigmoid(-x)
    return r, -r * torch.sigmoid(x)


LINKS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Derivatives]] = {
    "normal": (_log_ndtr, _normal_derivatives),
    "logistic": (torch.nn.functional.logsigmoid, _logistic_derivatives),
}
"""Link name -> (log F, its first and second derivatives)."""


class _Pairs:
    """The ordered pairs ``(i, j)``, ``i != j``, of n items as fixed linear maps.

    Working on the ``n (n - 1)`` pair differences ``x = q @ diff`` (one small matrix product)
    instead of broadcast ``[b, n, n]`` tensors skips the diagonal and keeps every elementwise op
    on one contiguous ``[b, pairs]`` tensor; gradient and Hessian are again matrix products.
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device):
        first, second = (~torch.eye(n, dtype=torch.bool, device=device)).nonzero().unbind(-1)
        k = torch.arange(first.numel(), device=device)
        self.first, self.second, self.n = first, second, n
        self.diff = torch.zeros(n, k.numel(), dtype=dtype, device=device)
        self.diff[first, k], self.diff[second, k] = 1.0, -1.0
        # Pair k adds its curvature c to H_ii and H_jj and subtracts it from H_ij and H_ji.
        self.hess = torch.zeros(k.numel(), n * n, dtype=dtype, device=device)
        self.hess[k, first * (n + 1)], self.hess[k, second * (n + 1)] = 1.0, 1.0
        self.hess[k, first * n + second], self.hess[k, second * n + first] = -1.0, -1.0
        self.eye = torch.eye(n, dtype=dtype, device=device)

    def objective(self, p: torch.Tensor, q: torch.Tensor, log_f) -> torch.Tensor:
        return (p * log_f(q @ self.diff)).sum(-1) - 0.5 * (q * q).sum(-1)

    def gradient_hessian(self, p: torch.Tensor, q: torch.Tensor, derivatives: Derivatives):
        r, s = derivatives(q @ self.diff)
        gradient = (p * r) @ self.diff.T - q
        hessian = ((p * s) @ self.hess).view(-1, self.n, self.n) - self.eye
        return gradient, hessian


def _line_search(pairs: _Pairs, p, q, direction, value, slope, log_f):
    """Largest step in 1, 1/2, 1/4, ... meeting Armijo's condition, per matrix, and its value."""
    step = torch.ones_like(value)
    # Near the optimum the gain falls below the rounding noise of the objective, so the test
    # is moot: with a Newton decrement (slope) under _QUADRATIC the step is at most 1e-4 long
    # (-H >= I) and the quadratic model exact, so the full step is taken.
    quadratic = slope < _QUADRATIC
    slack = 64 * torch.finfo(value.dtype).eps * (1 + value.abs())
    for _ in range(_MAX_HALVINGS):
        trial = pairs.objective(p, q + step.unsqueeze(-1) * direction, log_f)
        accepted = quadratic | (trial >= value + _ARMIJO * step * slope - slack)
        if accepted.all():
            break
        step = torch.where(accepted, step, step / 2)
    return step, trial


def _check_probabilities(name: str, values: torch.Tensor) -> None:
    if not torch.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1] (no NaN or inf)")


def map_estimate(P: torch.Tensor, link: str = "normal", tol: float = 1e-10, max_iter: int = 100) -> torch.Tensor:
    """MAP scores of the items of one or a batch of pairwise probability matrices.

    Args:
        P: ``[n, n]`` or ``[b, n, n]``; ``P[..., i, j]`` is the probability that item i beats
            item j. The diagonal is ignored. Rows need not satisfy ``P_ij + P_ji = 1``.
        link: ``"normal"`` (Thurstone Case V, default) or ``"logistic"`` (Bradley-Terry).
        tol: Stop when every gradient component is at most ``tol`` in absolute value.
        max_iter: Maximum number of Newton iterations; a RuntimeWarning counts the matrices
            still unconverged then (their current iterate is returned).

    Returns:
        Scores ``[n]`` or ``[b, n]`` in P's dtype (float32 for non-float input); computed in
        float64. Higher is better; under the N(0, 1) prior they are centred near 0.
    """
    if link not in LINKS:
        raise ValueError(f"unknown link {link!r}; choose one of {', '.join(LINKS)}")
    if P.ndim not in (2, 3) or P.shape[-1] != P.shape[-2]:
        raise ValueError(f"P must be [n, n] or [b, n, n], got shape {tuple(P.shape)}")
    _check_probabilities("P off the diagonal", P[..., ~torch.eye(P.shape[-1], dtype=torch.bool, device=P.device)])
    out_dtype = P.dtype if P.is_floating_point() else torch.get_default_dtype()
    n = P.shape[-1]
    pairs = _Pairs(n, torch.float64, P.device)
    p = P.reshape(-1, n, n)[:, pairs.first, pairs.second].double()
    q = _newton(pairs, p, LINKS[link], tol, max_iter)
    return q.reshape(P.shape[:-1]).to(out_dtype)


def _newton(pairs: _Pairs, p: torch.Tensor, link, tol: float, max_iter: int) -> torch.Tensor:
    log_f, derivatives = link
    q = torch.zeros(p.shape[0], pairs.n, dtype=p.dtype, device=p.device)
    value = pairs.objective(p, q, log_f)
    active = torch.arange(p.shape[0], device=p.device)
    for iteration in range(max_iter + 1):
        p_a, q_a = p[active], q[active]
        gradient, hessian = pairs.gradient_hessian(p_a, q_a, derivatives)
        keep = gradient.abs().amax(-1) > tol
        if not keep.all():  # converged matrices leave the batch
            active, p_a, q_a = active[keep], p_a[keep], q_a[keep]
            gradient, hessian = gradient[keep], hessian[keep]
        if active.numel() == 0 or iteration == max_iter:
            break
        # -H = I + (a weighted graph Laplacian) is positive definite: Cholesky cannot fail.
        factor = torch.linalg.cholesky(-hessian)
        direction = torch.cholesky_solve(gradient.unsqueeze(-1), factor).squeeze(-1)
        slope = (gradient * direction).sum(-1)
        step, trial = _line_search(pairs, p_a, q_a, direction, value[active], slope, log_f)
        q[active], value[active] = q_a + step.unsqueeze(-1) * direction, trial
    if active.numel():
        warnings.warn(f"map_estimate: {active.numel()} matrix(es) not converged after {max_iter} Newton "
                      f"iterations (largest gradient component {gradient.abs().amax().item():.3g} > tol {tol:g})",
                      RuntimeWarning, stacklevel=3)
    return q


def comparison_matrix(anchor_block: torch.Tensor, test_rows: torch.Tensor) -> torch.Tensor:
    """The ``(n+1) x (n+1)`` matrix of each test image against the ``n`` anchors.

    Args:
        anchor_block: ``[n, n]``, ``anchor_block[i, j]`` = P(anchor i beats anchor j), e.g. from
            both presentation orders. It is made consistent as ``(A + 1 - A^T) / 2``, so that
            ``P_ij + P_ji = 1`` and the diagonal is 0.5.
        test_rows: ``[b, n]`` (or ``[n]``): P(test image beats anchor j), the soft comparison
            with the anchor shown first and the test image second.

    Returns:
        ``[b, n+1, n+1]`` (or ``[n+1, n+1]``): the anchor block, then the test image as the last
        item (last row ``p``, last column ``1 - p``, corner 0.5).
    """
    n = anchor_block.shape[-1]
    if anchor_block.shape != (n, n):
        raise ValueError(f"anchor_block must be [n, n], got {tuple(anchor_block.shape)}")
    if test_rows.ndim not in (1, 2) or test_rows.shape[-1] != n:
        raise ValueError(f"test_rows must be [b, {n}] or [{n}], got {tuple(test_rows.shape)}")
    _check_probabilities("anchor_block", anchor_block)
    _check_probabilities("test_rows", test_rows)
    dtype = torch.promote_types(anchor_block.dtype, test_rows.dtype)
    dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
    rows = test_rows.to(dtype).reshape(-1, n)
    block = anchor_block.to(dtype=dtype, device=rows.device)
    out = torch.empty(rows.shape[0], n + 1, n + 1, dtype=dtype, device=rows.device)
    out[:, :n, :n] = (block + 1 - block.T) / 2
    out[:, n, :n] = rows
    out[:, :n, n] = 1 - rows
    out[:, n, n] = 0.5
    return out if test_rows.ndim == 2 else out[0]


READOFFS = ("raw", "minmax")


def readoff(q: torch.Tensor, mode: str = "raw") -> torch.Tensor:
    """The score of the last item (the test image) from MAP scores ``[..., n+1]``.

    Args:
        q: Scores with the test image last, e.g. from ``map_estimate(comparison_matrix(...))``.
        mode: ``"raw"`` (its MAP score, the default) or ``"minmax"`` (the release's read-off:
            the n+1 scores min-max rescaled to 0..100; 50 when they are all equal).

    Returns:
        Tensor ``[...]``.
    """
    if mode == "raw":
        return q[..., -1]
    if mode != "minmax":
        raise ValueError(f"unknown readoff mode {mode!r}; choose one of {', '.join(READOFFS)}")
    low, high = q.amin(-1), q.amax(-1)
    span = high - low
    scaled = 100 * (q[..., -1] - low) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, scaled, torch.full_like(scaled, 50.0))
