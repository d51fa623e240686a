#!/usr/bin/env bash
# GPU figures in a few minutes, wherever a GPU is at hand:
#
#   bench/gpu.sh [cuda|wgpu] [DATA_DIR]
#
# 1. builds the studies binary with the backend's feature (cuda: see README, *Backends*, for what
#    its build downloads and how to build offline);
# 2. `studies bench` on that backend: F1's training throughput at the paper's batch sizes (256 and
#    6000) and C1's at 256 and 5000, one thread of host work, 3 repetitions;
# 3. one paper-scale C1 run pair (seed 0, SB 256 and LB 400) on the CIFAR-10 subset in DATA_DIR
#    (default ../shared/data), 20 epochs, the paper's code's protocol.
#
# Everything lands in bench-gpu/<backend>/ with the device's name (nvidia-smi, or wgpu's adapter
# as the log prints it); commit that folder with the figures quoted in README.
set -euo pipefail
backend=${1:-cuda}
data=${2:-${FLATLAND_DATA:-../shared/data}}
case $backend in cuda | wgpu) ;; *) echo "usage: $0 [cuda|wgpu] [DATA_DIR]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
out=bench-gpu/$backend
mkdir -p "$out"
cargo build --release -p studies --features "$backend"
bin=target/release/studies
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } >"$out/device.txt"
"$bin" bench --backend "$backend" --reps 3 --threads 1 --c1-batches 256,5000 --out "$out" 2>&1 | tee "$out/bench.txt"
"$bin" keskar --scale paper --nets C1 --data cifar-10-subset --data-dir "$data" --seeds 1 --epochs 20 \
  --protocol keras --backend "$backend" --jobs 1 --out "$out" 2>&1 | tee "$out/keskar.txt"
echo "figures in $out"
