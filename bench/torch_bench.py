#!/usr/bin/env python3
"""PyTorch reference for `studies bench --compare-torch`.

Trains the same networks as flatland's `studies bench` (F1: 784 -> 5 x [dense 512, batch norm,
ReLU] -> 10; C1: Keskar's shallow convolutional net on 3 x 32 x 32 inputs) with Adam (lr 1e-3,
eps 1e-8) on random inputs, at the same batch sizes and thread counts, with the same protocol:
two untimed steps (one for C1), then `--reps` repetitions of `--steps` timed steps (scaled down
at batches above 256); each repetition gives one samples/s figure. Also times the full-set loss-and-gradient evaluation (F1 in
inference mode over 10,000 samples in chunks of 500, what sharpness measurement uses) and a
4096 x 4096 single-precision matrix multiply (the machine's measured GEMM peak).

Prints one JSON object per line: {"what", "batch", "threads", "rates"} with rates in samples/s
(GFLOP/s for the matrix multiply). Needs only torch (see README: installing the reference).
"""
import argparse
import json
import sys
import time

import torch
from torch import nn


def f1():
    layers, width, last = [], 512, 784
    for _ in range(5):
        layers += [nn.Linear(last, width), nn.BatchNorm1d(width), nn.ReLU()]
        last = width
    return nn.Sequential(*layers, nn.Linear(last, 10)), (784,)


def c1():
    def block(c_in):
        return [nn.Conv2d(c_in, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)]

    net = nn.Sequential(
        *block(3), *block(64), nn.Flatten(),
        nn.Linear(64 * 8 * 8, 384), nn.BatchNorm1d(384), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(384, 192), nn.BatchNorm1d(192), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(192, 10),
    )
    return net, (3, 32, 32)


NETS = {"f1": f1, "c1": c1}


def train_rates(name, batch, warmup, steps, reps):
    torch.manual_seed(0)
    net, shape = NETS[name]()
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, *shape) * 2 - 1
    y = torch.arange(batch) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


def full_gradient_rates(samples, chunk, reps):
    torch.manual_seed(0)
    net, shape = f1()
    net.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    x = torch.rand(samples, *shape) * 2 - 1
    y = torch.arange(samples) % 10

    def once():
        net.zero_grad(set_to_none=True)
        for i in range(0, samples, chunk):
            (loss_fn(net(x[i:i + chunk]), y[i:i + chunk]) / samples).backward()

    once()
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        once()
        rates.append(samples / (time.perf_counter() - start))
    return rates


def matmul_gflops(n, reps):
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
    return rates


def _grid_worker(steps):
    torch.set_num_threads(1)
    train_rates("f1", 256, 0, steps, 1)
    return steps * 256


def grid_rates(processes, steps, reps):
    """Samples/s summed over `processes` single-threaded processes, each training F1 at batch
    256 (building the network is part of the time, as in flatland's grid figure)."""
    import multiprocessing as mp

    rates = []
    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(_grid_worker, [1] * processes)  # start the workers and import torch
        for _ in range(reps):
            start = time.perf_counter()
            samples = sum(pool.map(_grid_worker, [steps] * processes))
            rates.append(samples / (time.perf_counter() - start))
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--f1-batches", type=int, nargs="*", default=[256, 6000])
    p.add_argument("--c1-batches", type=int, nargs="*", default=[256, 1000, 5000])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--full-gradient-samples", type=int, default=10000)
    p.add_argument("--grid-processes", type=int, default=0, help="also time this many single-threaded processes training F1 at once")
    p.add_argument("--only", choices=["c1"], help="time only C1 (for the allocator-tuned run)")
    args = p.parse_args()
    print(json.dumps({"what": "version", "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)
    for threads in args.threads:
        torch.set_num_threads(threads)
        emit = lambda what, batch, rates: print(json.dumps({"what": what, "batch": batch, "threads": threads, "rates": rates}), flush=True)
        if args.only == "c1":
            for batch in args.c1_batches:
                emit("c1-train", batch, train_rates("c1", batch, 1, max(1, args.steps * 256 // batch), args.reps))
            continue
        emit("matmul-4096", 4096, matmul_gflops(4096, args.reps))
        for batch in args.f1_batches:
            # A step at batch 6000 takes about as long as 20 at 256: fewer steps keep repetitions comparable.
            emit("f1-train", batch, train_rates("f1", batch, 2, max(2, args.steps * 256 // batch), args.reps))
        for batch in args.c1_batches:
            emit("c1-train", batch, train_rates("c1", batch, 1, max(1, args.steps * 256 // batch), args.reps))
        emit("f1-full-gradient", args.full_gradient_samples, full_gradient_rates(args.full_gradient_samples, 500, args.reps))
    if args.grid_processes:
        rates = grid_rates(args.grid_processes, args.steps, args.reps)
        print(json.dumps({"what": "f1-grid-processes", "batch": 256, "threads": args.grid_processes, "rates": rates}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
