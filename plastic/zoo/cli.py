"""Command line: ``python -m plastic {demo,window,triplet,competitive,distal-reward,conv-features,figures} ...``.

* ``demo``: unsupervised digit learning (Diehl & Cook style) with figures.
* ``window``: the STDP window of a built-in rule, measured by running the
  real trainer on spike pairs.
* ``triplet``: the Pfister & Gerstner pairing-frequency protocol.
* ``figures``: regenerate every figure of ``zoo_docs/``.
* ``competitive``: Song, Miller & Abbott (2000), competitive Hebbian learning
  through STDP (bimodal weights, output rate nearly independent of the input's).
* ``distal-reward``: Izhikevich (2007), one rewarded synapse among many, the
  reward up to a second after its pairing (MSTDP-ET with dopamine).
* ``conv-features``: Kheradpisheh et al. (2018) style convolutional STDP
  features on the 8x8 digits, a logistic readout against raw pixels and
  random weights, over several seeds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def _demo(args: argparse.Namespace) -> int:

    from plastic.zoo.demo import DemoConfig, run_demo

    config = DemoConfig(
        neurons=args.neurons,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        output=args.output,
        threads=args.threads,
        progress=not args.no_progress,
    )
    result = run_demo(config)
    print(f"test accuracy: {100 * result['test_accuracy']:.2f}%  ({result['seconds']:.1f} s)")
    print(f"figures and run.json in {config.output}")
    return 0


def _window(args: argparse.Namespace) -> int:
    from plastic.zoo.windows import RULES, plot_window

    if args.rule not in RULES:
        print(f"--rule: expected one of {sorted(RULES)}, got {args.rule!r}", file=sys.stderr)
        return 2
    path = plot_window(args.rule, args.output)
    print(f"wrote {path}")
    return 0


def _triplet(args: argparse.Namespace) -> int:
    from plastic.zoo.windows import plot_triplet_frequency

    path = plot_triplet_frequency(args.output)
    print(f"wrote {path}")
    return 0


def _figures(args: argparse.Namespace) -> int:
    from plastic.zoo.figures import make_all

    for path in make_all(args.output):
        print(f"wrote {path}")
    return 0


def _competitive(args: argparse.Namespace) -> int:
    import torch

    from plastic.zoo.competitive import CompetitiveConfig, run_and_save

    torch.set_num_threads(args.threads)
    config = CompetitiveConfig(seconds=args.seconds, rate=args.rate, seed=args.seed, device=args.device)
    summary = run_and_save(config, args.output, progress=not args.no_progress)
    near, rates = summary["near_bounds"], summary["final_rates_hz"]
    print(
        f"weights within 10% of a bound: {100 * near[0]:.1f}% ({config.rate:g} Hz inputs), "
        f"{100 * near[1]:.1f}% ({2 * config.rate:g} Hz); output {rates[0]:.1f} -> {rates[1]:.1f} Hz "
        f"when the input rate doubles (x{summary['rate_ratio']:.2f}); {summary['seconds']:.0f} s"
    )
    print(f"figure and run.json in {args.output}")
    return 0


def _distal_reward(args: argparse.Namespace) -> int:
    import torch

    from plastic.zoo.distal_reward import DistalRewardConfig, run_and_save

    torch.set_num_threads(args.threads)
    config = DistalRewardConfig(seconds=args.seconds, seed=args.seed, device=args.device)
    summary = run_and_save(config, args.output, progress=not args.no_progress)
    print(
        f"rewarded synapse: {summary['final_rewarded']:.3f} of the bound; the others: mean "
        f"{summary['final_others_mean']:.3f}, max {summary['final_others_max']:.3f} "
        f"({summary['rewards']} rewards, {config.seconds} s simulated, {summary['seconds']:.0f} s)"
    )
    print(f"figure and run.json in {args.output}")
    return 0


def _conv_features(args: argparse.Namespace) -> int:
    import torch

    from plastic.zoo.conv_features import ConvFeaturesConfig, run_and_save

    if args.runs < 1:
        print(f"--runs: expected at least 1 seed, got {args.runs}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    config = ConvFeaturesConfig(
        maps=args.maps, epochs=args.epochs, train_samples=args.train_samples, device=args.device
    )  # fmt: skip
    seeds = list(range(args.seed, args.seed + args.runs))
    summary = run_and_save(config, seeds, args.output, progress=not args.no_progress)
    for run in summary["runs"]:
        print(
            f"seed {run['seed']}: STDP features {100 * run['learned_accuracy']:.2f}%, random weights "
            f"{100 * run['random_accuracy']:.2f}%, raw pixels {100 * run['pixels_accuracy']:.2f}%"
        )
    means = summary["means"]
    print(
        f"mean over {len(seeds)} seeds: STDP features {100 * means['learned']:.2f}%, random weights "
        f"{100 * means['random']:.2f}% (gap {summary['gap_points']:+.2f} points), raw pixels "
        f"{100 * means['pixels']:.2f}%; {summary['seconds']:.0f} s"
    )
    print(f"figure and run.json in {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m plastic", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="unsupervised digit learning with figures")
    demo.add_argument("--neurons", type=int, default=None, help="excitatory neurons")
    demo.add_argument("--epochs", type=int, default=None, help="passes over the training split")
    demo.add_argument("--steps", type=int, default=None, help="time steps per presentation (dt = 1 ms)")
    demo.add_argument("--batch-size", type=int, default=None, help="digits presented in parallel")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    demo.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: each step is a small op)")
    demo.add_argument("--output", default="runs/demo", help="directory for figures and run.json")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(handler=_demo)

    window = commands.add_parser("window", help="draw the STDP window of a built-in rule")
    window.add_argument("--rule", default="stdp", help="rule name (see --help of plastic.zoo.windows)")
    window.add_argument("--output", default="runs/window", help="output directory")
    window.set_defaults(handler=_window)

    triplet = commands.add_parser("triplet", help="Pfister & Gerstner pairing-frequency protocol")
    triplet.add_argument("--output", default="runs/triplet", help="output directory")
    triplet.set_defaults(handler=_triplet)

    competitive = commands.add_parser("competitive", help="Song, Miller & Abbott (2000) competitive STDP")
    competitive.add_argument("--seconds", type=int, default=2000, help="simulated seconds")
    competitive.add_argument("--rate", type=float, default=20.0, help="input rate in Hz (the second neuron: twice)")
    competitive.add_argument("--seed", type=int, default=0)
    competitive.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    competitive.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    competitive.add_argument("--output", default="runs/competitive", help="directory for the figure and run.json")
    competitive.add_argument("--no-progress", action="store_true", help="no progress bar")
    competitive.set_defaults(handler=_competitive)

    distal = commands.add_parser("distal-reward", help="Izhikevich (2007) distal reward with MSTDP-ET")
    distal.add_argument("--seconds", type=int, default=900, help="simulated seconds")
    distal.add_argument("--seed", type=int, default=0)
    distal.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    distal.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    distal.add_argument("--output", default="runs/distal_reward", help="directory for the figure and run.json")
    distal.add_argument("--no-progress", action="store_true", help="no progress bar")
    distal.set_defaults(handler=_distal_reward)

    conv = commands.add_parser("conv-features", help="convolutional STDP features (Kheradpisheh et al. 2018 style)")
    conv.add_argument("--seed", type=int, default=0, help="first seed")
    conv.add_argument("--runs", type=int, default=3, help="seeds seed, seed+1, ... (the readouts are averaged)")
    conv.add_argument("--maps", type=int, default=30, help="feature maps of the conv layer")
    conv.add_argument("--epochs", type=int, default=1, help="passes over the training split")
    conv.add_argument("--train-samples", type=int, default=None, help="train the layer on this many images only")
    conv.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    conv.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    conv.add_argument("--output", default="runs/conv_features", help="directory for the figure and run.json")
    conv.add_argument("--no-progress", action="store_true", help="no progress bars")
    conv.set_defaults(handler=_conv_features)

    figures = commands.add_parser("figures", help="regenerate the figures of zoo_docs/")
    figures.add_argument("--output", default="zoo_docs/figures", help="output directory")
    figures.set_defaults(handler=_figures)
    return parser


@contextmanager
def process_settings_of_a_command() -> Iterator[None]:
    """Flush subnormal floats to zero and keep torch's thread count, for one command.

    Decaying traces reach subnormal floats, which are slow on CPUs, so the
    experiments flush them.  Both settings are process-wide: a command called
    in-process (a test, a notebook) must not leave them changed, or every later
    float computation in that process loses its subnormals.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)  # torch's default; it has no getter to restore from
        torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with process_settings_of_a_command():
        return int(args.handler(args))
