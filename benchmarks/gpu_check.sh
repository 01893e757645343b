#!/usr/bin/env bash
# The GPU figures in one run of about 9 minutes on a bare GPU machine without network access (docs/gpu.md):
#   make gpu-bundle                      # on a machine with CIFAR-10 and a package index: .gpu/ (wheels,
#                                        # float16 FID Inception, 3,000 CIFAR-10 PNGs), <= 60 MB
#   make gpu-check OUT_DIR=results/gpu   # on the GPU machine, in the repository root with .gpu/ beside it
#   bash benchmarks/gpu_check.sh [OUT_DIR]   # the same without make
# OUT_DIR, the only argument, is the folder the result files go to (default outputs/gpu-check; a relative
# path is taken from the current directory).
# 0. the tests marked gpu (a graph's replays against eager training, a straight against a resumed graph run,
#    a compiled model's layout, no device sync in an iteration), where pytest is;
# 1. the CUDA graph's step against the eager step (benchmarks/graph_check.py: CUDA-event windows, kernels
#    per iteration, host syncs of the replays, the weights after 20 iterations of each), 32 and 64 px, fp32 and
#    bf16, batch 128;
# 2. the speed benchmark on synthetic data: ours (the Trainer with the default callbacks and a CSV logger, and
#    with them off) in graph mode and eagerly vs the classic loop vs the bare step, fp32 and bf16, batch 128,
#    sizes 32 and 64 (images/s and the fraction of the matmul peak); speed.json holds both;
# 3. the quality benchmark on the bundled images (classic loop, paper recipe, best recipe), 10,000 fakes,
#    for as many iterations as the remaining minutes allow.
# GPU_CHECK_TINY=1 runs the same steps at toy sizes (how the tests check the mechanics on a CPU).
# GPU_CHECK_SPEED="setting ..." runs only those speed settings, GPU_CHECK_MINUTES (default 9) sets the run's
# length: together, how a rerun finishes what a failed run left.
set -euo pipefail
if [ $# -gt 1 ]; then
  echo "usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (default outputs/gpu-check)" >&2
  exit 2
fi
OUT_DIR="${1:-outputs/gpu-check}"
case "$OUT_DIR" in /*) ;; *) OUT_DIR="$PWD/$OUT_DIR" ;; esac  # relative to where it was called from
cd "$(dirname "$0")/.."
BUNDLE="${BUNDLE:-.gpu}"
WORK="${GPU_CHECK_WORK:-/tmp/gpu-check-work}"  # run folders; only the 8 result files go to OUT_DIR
MINUTES="${GPU_CHECK_MINUTES:-9}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT_DIR" "$WORK"
START=$(date +%s)
exec > >(tee "$OUT_DIR/gpu-check.log") 2>&1

if compgen -G "$BUNDLE/wheels/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-check-site "$BUNDLE"/wheels/*.whl
  export PYTHONPATH="/tmp/gpu-check-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export DCGAN_CACHE_DIR="${DCGAN_CACHE_DIR:-/tmp/gpu-check-cache}" WANDB_MODE=disabled PYTHONUNBUFFERED=1
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

# 0. the tests marked gpu (a compiled model's layout on CUDA, no device sync in an iteration), where pytest is;
#    their output goes to gpu-check.log with the rest
if [ "${GPU_CHECK_TINY:-0}" != 1 ] && "$PYTHON" -c "import pytest" 2>/dev/null; then
  "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests/model || echo "gpu tests failed"
fi

if [ "${GPU_CHECK_TINY:-0}" = 1 ]; then
  SPEED=(sizes=[32] warmup=1 iterations=2 reference_workers=0 peak_size=64)
  GRAPH=(sizes=[32] batch_size=4 widths=4 window=2 windows=2 compare=5)
  BATCHES=(4 8)
  QUALITY=(iterations=4 evaluate_every=2 batch_size=4 workers=0 grid=4 metrics.fid.num_fake=4
           "train_overrides=['model.ngf=8','model.ndf=8']")
else
  SPEED=(sizes=[32,64] warmup=20 iterations=100 reference_workers=8)
  GRAPH=()
  BATCHES=(128 512)
  QUALITY=(iterations=50000 evaluate_every=2500 batch_size=64 workers=8 metrics.fid.num_fake=10000)
fi

# 1. the graphed step against the eager step
if [ -z "${GPU_CHECK_SPEED:-}" ] || [[ " $GPU_CHECK_SPEED " == *" graph "* ]]; then
  "$PYTHON" -m benchmarks.graph_check "${GRAPH[@]}" out="$WORK/graph.json" hydra.run.dir="$WORK/graph" \
    || echo "graph check failed"
fi

# 2. speed: one row set per setting, merged into speed.json
speed() {  # name, then overrides; GPU_CHECK_SPEED="name ..." runs only those settings (a rerun of one)
  local name=$1
  shift
  if [ -n "${GPU_CHECK_SPEED:-}" ] && [[ " $GPU_CHECK_SPEED " != *" $name "* ]]; then return 0; fi
  "$PYTHON" -m benchmarks.speed data=synthetic "${SPEED[@]}" "$@" out="$WORK/speed/$name.json" \
    hydra.run.dir="$WORK/speed/$name" || echo "speed $name failed"
}
GRAPHED="train_overrides=['model.cuda_graph=true']"
speed fp32-b${BATCHES[0]}-graph batch_size=${BATCHES[0]} "$GRAPHED"
speed bf16-b${BATCHES[0]}-graph batch_size=${BATCHES[0]} precision=bf16-mixed "$GRAPHED"
speed fp32-b${BATCHES[0]}-eager batch_size=${BATCHES[0]}
speed bf16-b${BATCHES[0]}-on_device batch_size=${BATCHES[0]} precision=bf16-mixed \
  "train_overrides=['dataset.on_device=true']"
# only when named in GPU_CHECK_SPEED (minutes of compiling): model.compile keeps G and D in the NCHW layout on
# CUDA (torch 2.11's inductor failed channels_last's backward)
if [[ " ${GPU_CHECK_SPEED:-} " == *" bf16-b${BATCHES[0]}-on_device-compile "* ]]; then
  speed bf16-b${BATCHES[0]}-on_device-compile batch_size=${BATCHES[0]} precision=bf16-mixed \
    "train_overrides=['dataset.on_device=true','model.compile=true']"
fi
"$PYTHON" - "$WORK" "$OUT_DIR" <<'EOF'
import json, sys
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = []
for file in sorted((work / "speed").glob("*.json")):
    for row in json.loads(file.read_text())["throughput"]:
        rows.append({"setting": file.stem, **row})
graph = json.loads((work / "graph.json").read_text()) if (work / "graph.json").is_file() else []
(out / "speed.json").write_text(json.dumps({"speed": rows, "graph": graph}, indent=2))
for r in graph:
    print(f"graph check size {r['size']:3d} {r['precision']:10s}  eager {r['eager_img_s']:9.0f} img/s  graph "
          f"{r['graph_img_s']:9.0f}  ({r['speedup']:.2f}x)  kernels {r['kernels_eager']}  syncs "
          f"{r['syncs_in_replays']}  weights vs eager {r['max_relative_weight_difference']:.1e}")
for r in rows:
    print(f"{r['setting']:32s} size {r['size']:3d}  ours {r['ours_img_s']:9.0f} img/s  (callbacks off "
          f"{r['ours_callbacks_off_img_s']:9.0f})  classic {r['reference_img_s']:9.0f}  bare "
          f"{r['bare_step_img_s']:9.0f}  ours/classic {r['ratio']:.2f}x  {r['fraction_of_peak']:.2%} of "
          f"{r['peak_dtype']} peak")
EOF

# 3. quality, in the minutes left (the run stops starting new stages at the limit; the files are complete);
#    not with a --speed-only bundle, which carries no FID network
if [ -f "$BUNDLE/inception-fp16.pth" ]; then
  LEFT=$(( MINUTES * 60 - ($(date +%s) - START) - 45 ))
  "$PYTHON" -m benchmarks.quality data_path="$BUNDLE/cifar10" rows=[classic,paper,best] seeds=[0] \
    metrics.fid.weights_path="$BUNDLE/inception-fp16.pth" metrics.fid.num_real=null \
    "${QUALITY[@]}" time_limit_minutes="$(awk "BEGIN { print ($LEFT > 0 ? $LEFT : 0) / 60 }")" \
    name=gpu out_dir="$WORK/quality" || echo "quality failed"
  for file in quality.json quality.md fid.png; do
    [ -f "$WORK/quality/$file" ] && cp "$WORK/quality/$file" "$OUT_DIR/$file"
  done
  for row in classic paper best; do
    last=$(ls "$WORK/quality/$row-seed0"/samples_*.png 2>/dev/null | tail -1 || true)
    if [ -n "$last" ]; then cp "$last" "$OUT_DIR/samples_$row.png"; fi
  done
else
  echo "quality skipped: no $BUNDLE/inception-fp16.pth (a --speed-only bundle)"
fi
echo "gpu-check done in $(( $(date +%s) - START )) s"
