"""Time the MAP step: batched exact Newton vs the release's per-image Adam, in one run.

The release scores each test image by running 100 Adam steps (from a random start) on the
(n+1) x (n+1) matrix of that image and the anchors. Here the whole test set is solved at once by
``map_estimate``. The Adam baseline is timed on a subset and extrapolated linearly to the full
set (it is a per-image loop, so its cost is linear in the number of images).

Synthetic data: anchors with scores -2..2, test images with N(0, 1) scores, probabilities
Phi(s_test - s_anchor) disturbed by logit noise (a stand-in for the comparator's output).

    .venv/bin/python benchmarks/map_step.py [--images 10000] [--subset 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from c2s_lightning.evaluation.correlations import srcc
from c2s_lightning.scoring.map import comparison_matrix, map_estimate, readoff


def synthetic_matrices(images: int, anchors: int, noise: float, seed: int):
    """Matrices ``[images, anchors+1, anchors+1]`` and the true test scores."""
    gen = torch.Generator().manual_seed(seed)
    anchor_scores = torch.linspace(-2.0, 2.0, anchors, dtype=torch.float64)
    block = torch.special.ndtr(anchor_scores[:, None] - anchor_scores[None, :])
    truth = torch.randn(images, generator=gen, dtype=torch.float64)
    p = torch.special.ndtr(truth[:, None] - anchor_scores[None, :])
    logits = torch.logit(p, eps=1e-6) + noise * torch.randn(p.shape, generator=gen, dtype=p.dtype)
    return comparison_matrix(block, torch.sigmoid(logits)).float(), truth


def adam_scores(P: torch.Tensor, steps: int, lr: float, seed: int) -> torch.Tensor:
    """The release's approach, one matrix at a time: Adam on the negative MAP objective."""
    torch.manual_seed(seed)
    n = P.shape[-1]
    off = 1 - torch.eye(n, dtype=P.dtype)
    out = torch.empty(P.shape[0], n, dtype=P.dtype)
    for k, matrix in enumerate(P):
        q = torch.rand(n, dtype=P.dtype, requires_grad=True)
        optimizer = torch.optim.Adam([q], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            log_f = torch.special.log_ndtr(q[:, None] - q[None, :])
            loss = -(off * matrix * log_f).sum() + 0.5 * (q * q).sum()
            loss.backward()
            optimizer.step()
        out[k] = q.detach()
    return out


def max_rank_shift(a: np.ndarray, b: np.ndarray) -> int:
    """Largest change of any image's rank between two score vectors."""
    return int(np.abs(np.argsort(np.argsort(a)) - np.argsort(np.argsort(b))).max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="test images")
    parser.add_argument("--anchors", type=int, default=5, help="anchors (alpha * beta)")
    parser.add_argument("--subset", type=int, default=200, help="images the Adam baseline runs on")
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per image")
    parser.add_argument("--lr", type=float, default=0.1, help="Adam learning rate")
    parser.add_argument("--noise", type=float, default=0.5, help="logit noise of the comparator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="Newton timings (best is kept)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    P, truth = synthetic_matrices(args.images, args.anchors, args.noise, args.seed)
    map_estimate(P[:8])  # warm-up, not timed
    newton_s = float("inf")
    for _ in range(args.repeats):  # best of a few: the CPU may be shared
        start = time.perf_counter()
        exact = map_estimate(P)
        newton_s = min(newton_s, time.perf_counter() - start)

    subset = P[: args.subset].double()
    start = time.perf_counter()
    adam = adam_scores(subset, args.steps, args.lr, args.seed)
    adam_subset_s = time.perf_counter() - start
    adam_s = adam_subset_s * args.images / args.subset

    print(f"MAP for {args.images} images x ({args.anchors} anchors + 1), CPU, "
          f"{torch.get_num_threads()} threads")
    print(f"  batched Newton (exact):   {newton_s:8.3f} s "
          f"(best of {args.repeats}, on all {args.images})")
    print(f"  per-image Adam x{args.steps}:     {adam_s:8.3f} s (measured {adam_subset_s:.3f} s "
          f"on {args.subset}, extrapolated x{args.images / args.subset:g})")
    print(f"  speed-up:                 {adam_s / newton_s:8.1f} x")
    print(f"On the {args.subset}-image subset:")
    for mode in ("raw", "minmax"):
        e = readoff(exact[: args.subset].double(), mode).numpy()
        a = readoff(adam, mode).numpy()
        t = truth[: args.subset].numpy()
        print(f"  readoff {mode:6s}: SRCC(Newton, Adam) {srcc(e, a):.6f}, "
              f"max rank shift {max_rank_shift(e, a)}; "
              f"SRCC vs truth: Newton {srcc(e, t):.4f}, Adam {srcc(a, t):.4f}")
    gap = (exact[: args.subset].double() - adam).abs().max().item()
    print(f"  max |q_Newton - q_Adam| over all {args.anchors + 1} items: {gap:.2e}")


if __name__ == "__main__":
    main()
