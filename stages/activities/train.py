"""Train the temporal activity model on labelled tracks from generated street scenes.

    vidpipe train activity --out weights.pt [--seeds 0-39] [--frames 300] [--detector gt]
                           [--epochs 40] [--cache DIR] [--val-seeds 40-44] [--config configs/default.yaml]
    python -m stages.activities.train ...

Each scene (seed < 1000: seeds >= 1000 are reserved for evaluation and refused) runs through the
real stages (boxes -> track -> flow -> activity, see stages.activities.dataset; with --config FILE
that pipeline config's own background/motion/detect/track/flow/activity stages and params, so the
model learns from the boxes and features the config's chain makes); the activity
stage's own window features (Detections.data["activity_features"]) of every track, with the label
of the ground-truth figure the track matches by IoU (ignored where it matches none or the figure
is less than half visible), form one sequence per track. The causal conv net
(stages.activities.temporal) learns to label every step; the weights load with
torch.load(weights_only=True) and are used by `activity` with `classifier: temporal`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import LABELS
from .dataset import EVAL_SEED_MIN, ChainConfig, SceneSpec, build_stages, label_index, load_chain, run_scene
from .features import FEATURES


def feature_params(chain: ChainConfig | None = None):
    """The activity params that collect features: the config's activity stage's (its windows, focal,
    flow use, ...) or the defaults, with features written, no events and no model to load."""
    from dataclasses import replace

    from stages.activity import ActivityParams

    base = chain.activity if chain is not None and chain.activity is not None else ActivityParams()
    return replace(base, write_features=True, events=False, classifier="rules", weights=None)


def collect(spec: SceneSpec, detector: str = "gt", min_visibility: float = 0.5,
            chain: ChainConfig | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(features (T,F) float32, labels (T,) int64 with -1 = ignore)] per track of one scene.
    `chain`: a pipeline config's stages (dataset.load_chain; `detector` "gt" or "config")."""
    chain = build_stages(detector, feature_params(chain), seed=spec.seed, chain=chain)
    seqs: dict[int, list] = {}
    for r in run_scene(spec, chain):
        if r.features is None:
            continue
        lab = label_index(r.gt_label)
        lab[r.gt_visibility < min_visibility] = -1
        for k, tid in enumerate(r.track_ids.tolist()):
            seqs.setdefault(tid, []).append((r.features[k], lab[k]))
    out = []
    for rows in seqs.values():
        out.append((np.stack([f for f, _ in rows]).astype(np.float32), np.asarray([y for _, y in rows], np.int64)))
    return out


def load_or_collect(seeds, frames: int, detector: str, cache: Path | None, log=print,
                    chain: ChainConfig | None = None) -> list:
    data = []
    # the feature count (and the config chain's hash) in the name: a cache from a build with other
    # features, or from another chain, is not reused
    tag = f"{detector}_" + (f"cfg{chain.digest()}_" if chain is not None else "")
    for seed in seeds:
        path = None if cache is None else cache / f"{tag}{seed}_{frames}_f{len(FEATURES)}.npz"
        if path is not None and path.is_file():
            with np.load(path) as z:
                n = int(z["n"])
                data += [(z[f"x{i}"], z[f"y{i}"]) for i in range(n)]
            continue
        t0 = time.perf_counter()
        seqs = collect(SceneSpec(seed, n_frames=frames), detector, chain=chain)
        log(f"seed {seed}: {len(seqs)} tracks, {sum(len(y) for _, y in seqs)} rows, {time.perf_counter() - t0:.1f} s")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            arrays = {f"x{i}": x for i, (x, _) in enumerate(seqs)} | {f"y{i}": y for i, (_, y) in enumerate(seqs)}
            np.savez_compressed(path, n=len(seqs), **arrays)
        data += seqs
    return data


def batches(data, length: int, batch: int, rng: np.random.Generator):
    """Random windows of `length` steps (shorter tracks whole, left-padded by their first row)."""
    seqs = [(x, y) for x, y in data if (y >= 0).any()]
    weights = np.asarray([min(len(y), 4 * length) for _, y in seqs], np.float64)
    weights /= weights.sum()
    while True:
        xs, ys = [], []
        for i in rng.choice(len(seqs), batch, p=weights):
            x, y = seqs[i]
            if len(y) > length:
                s = int(rng.integers(0, len(y) - length + 1))
                x, y = x[s:s + length], y[s:s + length]
            pad = length - len(y)
            if pad:
                x = np.concatenate([np.repeat(x[:1], pad, 0), x])
                y = np.concatenate([np.full(pad, -1), y])
            xs.append(x)
            ys.append(y)
        yield np.stack(xs), np.stack(ys)


def train(data, *, epochs: int = 40, steps: int = 60, length: int = 64, batch: int = 32, hidden: int = 32,
          lr: float = 3e-3, seed: int = 0, device: str = "cpu", log=print):
    """Fit a TemporalNet on [(features, labels)]; returns the net (eval mode)."""
    import torch

    from .temporal import TemporalNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    allx = np.concatenate([x for x, _ in data])
    ally = np.concatenate([y for _, y in data])
    net = TemporalNet(allx.shape[1], len(LABELS), hidden=hidden).to(device)
    net.mean.copy_(torch.as_tensor(allx.mean(0)))
    net.std.copy_(torch.as_tensor(allx.std(0) + 1e-3))
    counts = np.bincount(ally[ally >= 0], minlength=len(LABELS)).astype(np.float64)
    cw = torch.as_tensor((counts.sum() / np.maximum(counts, 1) / len(LABELS)) ** 0.5, dtype=torch.float32, device=device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps)
    gen = batches(data, length, batch, rng)
    net.train()
    for epoch in range(epochs):
        total = 0.0
        for _ in range(steps):
            x, y = next(gen)
            logits = net(torch.as_tensor(x, device=device))
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(LABELS)),
                                                     torch.as_tensor(y, device=device).reshape(-1),
                                                     weight=cw, ignore_index=-1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if log and (epoch % 10 == 9 or epoch == epochs - 1):
            log(f"epoch {epoch + 1}: loss {total / steps:.4f}")
    return net.eval()


def accuracy(net, data) -> float:
    """Per-step accuracy of the net on [(features, labels)] (labelled steps only)."""
    import torch

    correct = total = 0
    with torch.inference_mode():
        for x, y in data:
            dev = next(net.parameters()).device
            pred = net(torch.as_tensor(x[None], device=dev))[0].argmax(1).cpu().numpy()
            keep = y >= 0
            correct += int((pred[keep] == y[keep]).sum())
            total += int(keep.sum())
    return correct / max(1, total)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="FILE", help="weights file to write (.pt)")
    parser.add_argument("--seeds", default="0-39", help="training scene seeds (< 1000)")
    parser.add_argument("--val-seeds", default="", help="held-out seeds (< 1000) for a validation accuracy")
    parser.add_argument("--frames", type=int, default=300, help="frames per scene")
    parser.add_argument("--config", metavar="FILE", help="collect through this pipeline config's stages "
                        "(background, motion, detect, track, flow, activity: those it has, its order and params; "
                        "process: ignored) instead of the built-in chain")
    parser.add_argument("--detector", default=None, choices=("gt", "motion", "yolox"),
                        help="boxes (see eval; default gt, with --config the config's box stages)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--cache", metavar="DIR", help="keep the collected features here (reused by later runs)")
    parser.add_argument("--device", default="cpu", help="torch device for training")


def run(args) -> int:
    from pipeline.errors import ConfigError

    from .evaluate import check_detector, parse_seeds
    from .temporal import save_weights

    try:
        seeds, val = parse_seeds(args.seeds), parse_seeds(args.val_seeds)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    bad = [s for s in seeds + val if s >= EVAL_SEED_MIN]
    if bad:
        raise ConfigError(f"--seeds: seeds >= {EVAL_SEED_MIN} are reserved for evaluation, got {bad[:5]}")
    if not seeds:
        raise ConfigError("--seeds: expected at least one seed")
    chain = load_chain(args.config) if getattr(args, "config", None) else None
    detector = check_detector(args.detector, chain)
    if chain is not None:
        print(f"chain ({chain.origin}): {chain.describe(detector)}", flush=True)
    cache = Path(args.cache) if args.cache else None
    data = load_or_collect(seeds, args.frames, detector, cache, chain=chain)
    net = train(data, epochs=args.epochs, hidden=args.hidden, device=args.device)
    print(f"train accuracy (per step): {accuracy(net, data):.4f}")
    if val:
        print(f"validation accuracy (per step): {accuracy(net, load_or_collect(val, args.frames, detector, cache, chain=chain)):.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_weights(args.out, net.cpu(), LABELS, FEATURES)
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    from pipeline.cli import module_main

    return module_main("python -m stages.activities.train", __doc__, configure, run, argv)


if __name__ == "__main__":
    sys.exit(main())
