#!/usr/bin/env python3
"""PyTorch reference for `vigil bench fit` and `cargo bench -p vigil-plugin-cae --bench step`.

Builds the LBR-SPR autoencoder of docs/method.md 5.1 (three 2x poolings down,
three stride-2 transposed convolutions up, a double 3x3 convolution with
BatchNorm and ReLU at every level, a 1x1 output convolution), then times, on
random cubes, one Adam training step (weighted per-sample squared error, as
the `cae` stage computes it) and one eval-mode forward at each batch size.
Every figure is the median of the timed repetitions after two untimed ones.

Prints one header line and one line per batch size:
    torch 2.x, threads 2, features 16, channels 15 -> 15, size 32, params 636047
    batch 64: train step 0.319 s (201 cubes/s), eval forward 0.083 s (773 cubes/s)

THREADS (environment) or --threads sets torch's intra-op threads (default 2);
--device cuda times the same on a GPU (synchronized before each clock read).
"""
import argparse
import os
import statistics
import time

import torch
from torch import nn


def double_conv(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def autoencoder(cin, cout, f):
    layers = double_conv(cin, f)
    for a, b in ((f, 2 * f), (2 * f, 4 * f), (4 * f, 8 * f)):
        layers += [nn.MaxPool2d(2)] + double_conv(a, b)
    for c in (8 * f, 4 * f, 2 * f):
        layers += [nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1)] + double_conv(c, c // 2)
    layers.append(nn.Conv2d(f, cout, 1))
    return nn.Sequential(*layers)


def median_seconds(run, repeats, sync):
    for _ in range(2):
        run()
    times = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=32, help="F, the first level's channels")
    parser.add_argument("--in-channels", type=int, default=15)
    parser.add_argument("--out-channels", type=int, default=15)
    parser.add_argument("--size", type=int, default=32, help="cube side in pixels")
    parser.add_argument("--batches", default="64,256", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per figure")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "2")))
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for a GPU")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = autoencoder(args.in_channels, args.out_channels, args.features).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    params = sum(p.numel() for p in model.parameters())
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"threads {torch.get_num_threads()}"
    print(f"torch {torch.__version__}, {where}, features {args.features}, "
          f"channels {args.in_channels} -> {args.out_channels}, size {args.size}, params {params}", flush=True)
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.rand(batch, args.in_channels, args.size, args.size, device=device)
        target = x[:, : args.out_channels].clone()
        weights = torch.ones(batch, device=device)
        values = batch * args.out_channels * args.size * args.size

        def train_step():
            model.train()
            optimizer.zero_grad()
            errors = ((model(x) - target) ** 2).flatten(1).sum(1)
            ((weights * errors).sum() / values).backward()
            optimizer.step()

        def eval_forward():
            model.eval()
            with torch.no_grad():
                ((model(x) - target) ** 2).flatten(1).sum(1)

        step = median_seconds(train_step, args.repeats, sync)
        forward = median_seconds(eval_forward, args.repeats, sync)
        print(f"batch {batch}: train step {step:.3f} s ({batch / step:.0f} cubes/s), "
              f"eval forward {forward:.3f} s ({batch / forward:.0f} cubes/s)", flush=True)


if __name__ == "__main__":
    main()
