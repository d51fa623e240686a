#!/usr/bin/env python3
"""PyTorch reference for `studies bench --compare-torch`.

Trains the same networks as flatland's `studies bench` (F1: 784 -> 5 x [dense 512, batch norm,
ReLU] -> 10; C1: Keskar's shallow convolutional net on 3 x 32 x 32 inputs) with Adam (lr 1e-3,
eps 1e-8) on random inputs, at the same batch sizes and thread counts, with the same protocol.

A server, so that the bench can alternate repetitions: one of flatland's, then one of
PyTorch's, so both sides see the same machine (a shared virtual machine's speed drifts by
tens of percent within minutes). It prints one line {"what": "version", "torch": ...}, then
answers each request line on stdin, {"what", "batch", "threads", "steps"}, with one timed
repetition, {"rate": samples/s} (GFLOP/s for the matrix multiply):

- "f1-train", "c1-train": `steps` Adam steps at `batch`; the network is built, and its
  untimed warm-up steps run (two for F1, one for C1), at the first request for that figure;
- "f1-full-gradient": F1's loss and gradient in inference mode over `batch` samples in chunks
  of 500 (what sharpness measurement uses);
- "matmul-4096": one 4096 x 4096 single-precision multiply (the machine's GEMM peak);
- "f1-grid-cell": a fresh F1 trained `steps` steps at batch 256, building included (the bench
  sends one to each of several single-threaded servers at once, as flatland's grid runs cells).

Needs only torch (see README: installing the reference).
"""
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


def trainer(name, batch, warmup):
    """Builds the network, runs `warmup` steps; returns a function timing `steps` more."""
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

    def rep(steps):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * batch / (time.perf_counter() - start)

    return rep


def full_gradient(samples, chunk=500):
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

    def rep(_steps):
        start = time.perf_counter()
        once()
        return samples / (time.perf_counter() - start)

    return rep


def matmul(n):
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b

    def rep(_steps):
        start = time.perf_counter()
        a @ b
        return 2 * n**3 / (time.perf_counter() - start) / 1e9

    return rep


def grid_cell(steps):
    return trainer("f1", 256, 0)(steps)


def build(what, batch):
    if what == "f1-train":
        return trainer("f1", batch, 2)
    if what == "c1-train":
        return trainer("c1", batch, 1)
    if what == "f1-full-gradient":
        return full_gradient(batch)
    if what == "matmul-4096":
        return matmul(4096)
    if what == "f1-grid-cell":
        return grid_cell
    raise ValueError(f"unknown figure {what!r}")


def main():
    print(json.dumps({"what": "version", "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)
    current, rep = None, None
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        torch.set_num_threads(req["threads"])
        key = (req["what"], req["batch"], req["threads"])
        if key != current:
            # One figure at a time: the last one's network and data are freed first.
            current, rep = None, None
            rep = build(req["what"], req["batch"])
            current = key
        print(json.dumps({"rate": rep(req["steps"])}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
