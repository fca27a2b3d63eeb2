"""Score flow methods on Middlebury-layout pairs and write their results as .flo files.

    vidpipe eval flow ROOT --out DIR [--methods horn_schunck,dis,...] [--device cuda] [--json FILE]
    python -m stages.opticalflow.evaluate ROOT --out DIR ...

Every ROOT/<NAME>/ holding frame10.png and frame11.png is a pair (ROOT itself may be one); each
method's flow from frame10 to frame11 goes to DIR/<method>/<NAME>.flo (Middlebury format), so
anyone can score it. Where ROOT/<NAME>/flow10.flo exists it is the ground truth: pixels with
|u| or |v| > 1e9 are unknown and left out. Printed per method and pair, and as means:
- AEE: average endpoint error, mean |f - f_gt| in pixels;
- AAE: average angular error in degrees, Barron et al.'s convention: the angle between the
  space-time vectors (u, v, 1) and (u_gt, v_gt, 1);
- time: wall-clock milliseconds of the method on that pair (grey conversion included, file I/O
  not; GPU work synchronised), after one untimed warm-up run on the first pair.
Means are printed over all pairs and per group: numbered pairs `<PREFIX>_<digits>` (e.g.
FlyingChairs_0000001) group by prefix, the other (named Middlebury) pairs form 'Middlebury'.
Methods: horn_schunck (coarse-to-fine, the default), horn_schunck_classic (the 1981 single-scale
method), lucas_kanade (dense pyramidal), farneback and dis (OpenCV peers, DIS 'medium' preset).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from .flo import known_mask, read_flo, write_flo
from .methods import METHODS, estimate


def find_pairs(root: Path) -> list[Path]:
    """Pair folders (frame10.png + frame11.png) under root, sorted by name; root itself if it is one."""
    root = Path(root)
    has = lambda p: (p / "frame10.png").is_file() and (p / "frame11.png").is_file()  # noqa: E731
    if has(root):
        return [root]
    if not root.is_dir():
        raise _error(f"eval flow: {root} is not a folder")
    pairs = sorted(p for p in root.iterdir() if p.is_dir() and has(p))
    if not pairs:
        raise _error(f"eval flow: no <NAME>/frame10.png + frame11.png under {root}")
    return pairs


def _error(message: str) -> Exception:
    try:
        from pipeline.errors import PipelineError
    except ImportError:  # pragma: no cover - kernels used without the engine
        return RuntimeError(message)
    return PipelineError(message)


def endpoint_error(flow: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(AEE pixels, AAE degrees, Barron convention) over gt's known pixels.
    Convention: (H,W,2) float each; NaN when no pixel is known."""
    if flow.shape != gt.shape:
        raise ValueError(f"endpoint_error: flow {flow.shape} and gt {gt.shape} differ")
    known = known_mask(gt)
    if not known.any():
        return float("nan"), float("nan")
    f, g = flow[known].astype(np.float64), gt[known].astype(np.float64)
    aee = np.linalg.norm(f - g, axis=1).mean()
    cos = (f[:, 0] * g[:, 0] + f[:, 1] * g[:, 1] + 1.0) / np.sqrt(
        (f[:, 0] ** 2 + f[:, 1] ** 2 + 1.0) * (g[:, 0] ** 2 + g[:, 1] ** 2 + 1.0))
    aae = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean()
    return float(aee), float(aae)


def group_of(name: str) -> str:
    match = re.fullmatch(r"(.+)_\d+", name)
    return match.group(1) if match else "Middlebury"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def evaluate(root, out=None, methods=METHODS, device: str = "cpu", warmup: bool = True,
             log=print) -> dict:
    """Run `methods` on every pair under root; returns {"pairs": [...], "means": {...}} where each
    pair row is {method, pair, group, aee, aae, ms} (aee/aae None without ground truth)."""
    import cv2

    pairs = find_pairs(Path(root))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise _error(f"eval flow: unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    images = {}
    for pair in pairs:
        a, b = cv2.imread(str(pair / "frame10.png")), cv2.imread(str(pair / "frame11.png"))
        if a is None or b is None or a.shape != b.shape:
            raise _error(f"eval flow: cannot read two same-size frames in {pair}")
        gt = read_flo(pair / "flow10.flo") if (pair / "flow10.flo").is_file() else None
        images[pair.name] = (a, b, gt)
    rows = []
    for method in methods:
        if warmup:
            a, b, _ = images[pairs[0].name]
            estimate(method, a, b, device)
        for pair in pairs:
            a, b, gt = images[pair.name]
            _sync(device)
            start = time.perf_counter()
            flow = estimate(method, a, b, device)
            _sync(device)
            ms = (time.perf_counter() - start) * 1000.0
            if out is not None:
                write_flo(Path(out) / method / f"{pair.name}.flo", flow)
            aee, aae = endpoint_error(flow, gt) if gt is not None and gt.shape == flow.shape else (None, None)
            row = dict(method=method, pair=pair.name, group=group_of(pair.name), aee=aee, aae=aae, ms=ms)
            rows.append(row)
            if log:
                log(_format_row(row))
    return {"pairs": rows, "means": summarize(rows)}


def summarize(rows: list[dict]) -> dict:
    """Means per method: over all pairs ('all') and per group. {method: {group: {aee, aae, ms, n}}}."""
    out: dict = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        groups = {"all": mine}
        for g in dict.fromkeys(r["group"] for r in mine):
            groups[g] = [r for r in mine if r["group"] == g]
        if len(groups) == 2:  # one group: 'all' says it
            groups = {"all": mine}
        out[method] = {}
        for g, rs in groups.items():
            scored = [r for r in rs if r["aee"] is not None]
            mean = lambda k: float(np.mean([r[k] for r in scored])) if scored else None  # noqa: E731
            out[method][g] = dict(aee=mean("aee"), aae=mean("aae"), ms=float(np.mean([r["ms"] for r in rs])),
                                  n=len(rs), scored=len(scored))
    return out


def _fmt(v, spec):
    return format(v, spec) if v is not None else "-".rjust(len(format(0.0, spec)))


def _format_row(row: dict) -> str:
    return (f"{row['method']:<22} {row['pair']:<24} {_fmt(row['aee'], '8.3f')} {_fmt(row['aae'], '9.2f')} "
            f"{row['ms']:10.1f}")


def format_table(result: dict) -> str:
    lines = [f"{'method':<22} {'pair':<24} {'AEE px':>8} {'AAE deg':>9} {'time ms':>10}"]
    lines += [_format_row(r) for r in result["pairs"]]
    lines.append("")
    for method, groups in result["means"].items():
        for g, m in groups.items():
            label = f"mean {g} ({m['n']})"
            lines.append(f"{method:<22} {label:<24} {_fmt(m['aee'], '8.3f')} {_fmt(m['aae'], '9.2f')} {m['ms']:10.1f}")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="folder of <NAME>/frame10.png, frame11.png [, flow10.flo]")
    parser.add_argument("--out", required=True, help="write DIR/<method>/<NAME>.flo here")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, from: {', '.join(METHODS)} (default: all)")
    parser.add_argument("--device", default="cpu", help="torch device for the torch methods (cpu, cuda, cuda:1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-warmup", action="store_true", help="time the first call too")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this file")


def run(args) -> int:
    import torch

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise _error(f"eval flow: --device {args.device}: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    header = [f"{'method':<22} {'pair':<24} {'AEE px':>8} {'AAE deg':>9} {'time ms':>10}"]

    def log(line: str) -> None:  # the header with the first row: a mistake prints only its error line
        if header:
            print(header.pop(), flush=True)
        print(line, flush=True)

    result = evaluate(args.root, args.out, methods, args.device, warmup=not args.no_warmup, log=log)
    print()
    print(format_table(result).split("\n\n", 1)[1])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.opticalflow.evaluate", description=__doc__.split("\n\n")[0])
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Exception as exc:  # one line for a user's mistake, like the CLI
        if type(exc).__name__ in ("PipelineError", "ConfigError"):
            print(f"error: {exc}", file=sys.stderr)
            return 2 if type(exc).__name__ == "ConfigError" else 1
        raise


if __name__ == "__main__":
    sys.exit(main())
