"""Train the testdata/mnist nets in torch with a given recipe, for comparison with lithe-train.

Same nets (`quant_data.build_net`), data (`quant_data.load_mnist`, pixels / 255) and recipe
options as `cargo run --release -p lithe-train --example mnist`: batch 64, Adam with L2 weight
decay, cosine decay to 0 over all steps, cross-entropy with label smoothing, and one of three
augmentations (a random shift of up to 2 pixels per sample or one per batch, zero-filled; or
none). torch's default initialization. Writes nothing into testdata: prints one line per run
and, with --json, appends the runs to that file.

    target/peersenv/bin/python xtask/python/train_compare.py --mnist testdata/mnist \
        --model lenet_bn --epochs 15 --lr 2e-3 --smoothing 0.1 --shift sample --seeds 1,2,3,4,5
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quant_data import build_net, load_mnist  # noqa: E402

BATCH = 64


def shift_batch(xb, gen, max_shift: int, per_sample: bool):
    """Zero-filled random shifts of up to `max_shift` pixels: one per sample or one per batch."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = xb.shape
    span = 2 * max_shift + 1
    padded = F.pad(xb, (max_shift,) * 4)
    if not per_sample:
        sy, sx = torch.randint(0, span, (2,), generator=gen).tolist()
        return padded[:, :, sy : sy + h, sx : sx + w]
    sy = torch.randint(0, span, (n,), generator=gen)
    sx = torch.randint(0, span, (n,), generator=gen)
    rows = (sy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (sx[:, None] + torch.arange(w))[:, None, None, :]
    items = torch.arange(n)[:, None, None, None]
    chans = torch.arange(xb.shape[1])[None, :, None, None]
    return padded[items, chans, rows, cols]


def train_one(a, seed: int, data) -> dict:
    import torch
    import torch.nn.functional as F

    tx, ty, vx, vy = data
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = build_net(a.model)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr, weight_decay=a.wd)
    steps = a.epochs * ((len(tx) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    xt, yt = torch.from_numpy(tx), torch.from_numpy(ty)
    seen, t0 = 0, time.perf_counter()
    for _ in range(a.epochs):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), BATCH):
            idx = perm[i : i + BATCH]
            xb = xt[idx]
            if a.shift != "none":
                xb = shift_batch(xb, gen, 2, a.shift == "sample")
            loss = F.cross_entropy(net(xb), yt[idx], label_smoothing=a.smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
    wall = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        acc = float((net(torch.from_numpy(vx)).argmax(1).numpy() == vy).mean())
    return {"seed": seed, "test_accuracy": acc, "train_wall_s": round(wall, 2),
            "train_images_per_s": round(seen / wall, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", required=True)
    p.add_argument("--model", choices=["lenet_bn", "dwsep"], required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--smoothing", type=float, default=0.0)
    p.add_argument("--shift", choices=["sample", "batch", "none"], default="sample")
    p.add_argument("--seeds", default="1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="append the runs to this JSON file (a list)")
    a = p.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    data = load_mnist(Path(a.mnist))
    recipe = {k: getattr(a, k) for k in ("model", "epochs", "lr", "wd", "smoothing", "shift", "threads")}
    runs = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        r = train_one(a, seed, data)
        runs.append(r)
        print(f"{a.model} torch {torch.__version__}: seed {seed}: test accuracy {100 * r['test_accuracy']:.1f}% "
              f"after {a.epochs} epochs, training {r['train_wall_s']:.1f} s, {r['train_images_per_s']:.0f} images/s",
              flush=True)
    if a.json:
        path = Path(a.json)
        prior = json.loads(path.read_text()) if path.exists() else []
        prior.append({"recipe": recipe, "torch": torch.__version__, "runs": runs})
        path.write_text(json.dumps(prior, indent=2) + "\n")


if __name__ == "__main__":
    main()
