"""Figure of zoo_docs/rate_rules.md: Oja's rule finds the principal component
(unit norm), BCM with a sliding threshold makes a neuron selective.

Both on a rate neuron (``y = w . x``, rectified for BCM) with the per-step
forms :func:`~plastic.functional.rate_rules.oja_change` and
:func:`~plastic.functional.rate_rules.bcm_change`, the same changes the
trainers apply to cells step by step.
"""

from __future__ import annotations

from pathlib import Path

import torch

from plastic.functional.rate_rules import bcm_change, oja_change
from plastic.zoo.plotting import pyplot, save_figure

COVARIANCE = ((3.0, 1.0), (1.0, 2.0))
PATTERNS = ((1.0, 0.2), (0.2, 1.0))


def oja_trajectory(steps: int = 20000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs ``[steps, 2]``, weights ``[steps + 1, 2]`` and the covariance's top eigenvector."""
    generator = torch.Generator().manual_seed(seed)
    covariance = torch.tensor(COVARIANCE, dtype=torch.float64)
    cholesky = torch.linalg.cholesky(covariance)
    inputs = (cholesky @ torch.randn(2, steps, generator=generator, dtype=torch.float64)).T
    weight = torch.tensor([[0.3, -0.8]], dtype=torch.float64)
    weights = [weight.flatten()]
    for step in range(steps):
        x = inputs[step : step + 1]
        weight = weight + oja_change(x, x @ weight.T, weight, 0.01 if step < 15000 else 0.001)
        weights.append(weight.flatten())
    return inputs, torch.stack(weights), torch.linalg.eigh(covariance)[1][:, -1]


def bcm_responses(steps: int = 40000) -> tuple[torch.Tensor, torch.Tensor]:
    """Responses to the two patterns ``[steps, 2]`` and the threshold ``[steps]``."""
    patterns = torch.tensor(PATTERNS, dtype=torch.float64)
    weight = torch.tensor([[0.55, 0.45]], dtype=torch.float64)
    theta = torch.zeros(1, 1, dtype=torch.float64)
    responses, thresholds = [], []
    for step in range(steps):
        x = patterns[step % 2].unsqueeze(0)
        y = (x @ weight.T).clamp_min(0)
        theta = theta + 0.01 * (y * y - theta)
        weight = weight + bcm_change(x, y, theta, 0.005)
        responses.append((patterns @ weight.T).clamp_min(0).flatten())
        thresholds.append(float(theta))
    return torch.stack(responses), torch.tensor(thresholds)


def main(out_dir: str | Path = "zoo_docs/figures") -> Path:
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    inputs, weights, top = oja_trajectory()
    left.scatter(inputs[:2000, 0].numpy(), inputs[:2000, 1].numpy(), s=1, color="0.75")
    left.plot(weights[:, 0].numpy(), weights[:, 1].numpy(), color="C0", lw=1, label="w during learning")
    final = weights[-1]
    left.plot([final[0].item()], [final[1].item()], "o", color="C0",
              label=f"final w, |w| = {final.norm():.3f}")  # fmt: skip
    sign = 1.0 if float(final @ top) > 0 else -1.0
    left.plot([0, sign * top[0].item()], [0, sign * top[1].item()], "--", color="C3", label="top eigenvector")
    left.set_aspect("equal")
    left.set_xlim(-4, 4)
    left.set_ylim(-4, 4)
    left.set_title("Oja: the principal component, unit norm")
    left.legend(fontsize=7, loc="lower right")
    responses, thresholds = bcm_responses()
    step_axis = torch.arange(responses.shape[0]).numpy()
    right.plot(step_axis, responses[:, 0].numpy(), color="C0", label="response to pattern 1")
    right.plot(step_axis, responses[:, 1].numpy(), color="C1", label="response to pattern 2")
    right.plot(step_axis, thresholds.numpy(), color="0.4", ls="--", label="threshold theta")
    right.set_xlabel("presentation")
    right.set_title("BCM: selectivity from a sliding threshold")
    right.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, Path(out_dir) / "rate_rules.png", dpi=120)


if __name__ == "__main__":
    main()
