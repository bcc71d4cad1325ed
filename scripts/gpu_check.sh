#!/usr/bin/env bash
# GPU check, for a machine with a CUDA GPU (about 5 minutes): the GPU-marked tests, a few hundred
# iterations of options/esrgan_x4.yml shrunk with --force_yml on CUDA (fp32, bf16, fp16,
# channels_last, compile), a DDP smoke test with nccl, the Real-ESRGAN degradation step on CUDA,
# the inference benchmark in fp32 / fp16 / bf16 and the video benchmark against RealESRGANer
# (issue 16's 3x target). Prints one table; exits 1 if any row failed.
# Without a GPU it says so and exits 0.
#
#   bash scripts/gpu_check.sh                   # logs in results/gpu_check/
#   GPU_CHECK_ITERS=500 bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
ITERS=${GPU_CHECK_ITERS:-200}
LOGS=results/gpu_check

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible to torch here; nothing to check (exit 0)."
    exit 0
fi
mkdir -p "$LOGS"
rm -rf experiments/gpu_check_* "$LOGS"/*.log
"$PY" -c "import torch; print('gpu_check:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"

ROWS=()
FAILED=0
# row NAME DETAIL_FUNCTION COMMAND...: run COMMAND with its output in $LOGS/NAME.log, record a table row
row() {
    local name=$1 detail=$2 status=PASS
    shift 2
    local start=$SECONDS
    echo "gpu_check: running $name" >&2
    "$@" >"$LOGS/$name.log" 2>&1 || status=FAIL
    [[ $status == FAIL ]] && FAILED=1
    ROWS+=("$(printf '%-26s %-5s %5ss  %s' "$name" "$status" "$((SECONDS - start))" "$($detail "$LOGS/$name.log")")")
}
skip_row() { ROWS+=("$(printf '%-26s %-5s %5s   %s' "$1" "SKIP" "-" "$2")"); }
no_detail() { :; }
pytest_detail() { tail -n 1 "$1"; }
train_detail() {  # basicsr's last "time (data): s/iter" and last validation PSNR
    local t p
    t=$(grep -o 'time (data): [0-9.]*' "$1" | tail -n 1 | awk '{print $3}')
    p=$(grep -o '# psnr: [0-9.]*' "$1" | tail -n 1 | awk '{print $3}')
    echo "${t:-?} s/iter, val PSNR ${p:-?} dB"
}
last_line() { tail -n 1 "$1"; }

# -- GPU-marked tests -----------------------------------------------------------------------------
row gpu_tests pytest_detail "$PY" -m pytest -q -m gpu -p no:cacheprovider

# -- options/esrgan_x4.yml, shrunk, on the sample photos ------------------------------------------
[[ -d datasets/sample/train/high_res ]] || "$PY" scripts/prepare_sample_data.py >"$LOGS/sample_data.log" 2>&1
SHRINK=(num_gpu=1 "network_g:num_block=4" "train:total_iter=$ITERS" "val:val_freq=$ITERS" "val:save_img=false"
        "logger:print_freq=50" "logger:save_checkpoint_freq=$ITERS" "logger:use_tb_logger=false"
        "path:pretrain_network_g=~" "datasets:train:io_backend:type=disk" "datasets:train:batch_size_per_gpu=8"
        "datasets:train:num_worker_per_gpu=4"
        "datasets:train:dataroot_gt=datasets/sample/train/high_res"
        "datasets:train:dataroot_lq=datasets/sample/train/low_res"
        "datasets:val:dataroot_gt=datasets/sample/val/high_res" "datasets:val:dataroot_lq=datasets/sample/val/low_res"
        "train:perceptual_opt:vgg_weights=caffe" "train:perceptual_opt:perceptual_weight=0.1")  # offline VGG19
train_row() {  # train_row NAME SPEED_OVERRIDES...
    local name=$1
    shift
    row "$name" train_detail "$PY" train.py -opt options/esrgan_x4.yml --force_yml "name=gpu_check_$name" \
        "${SHRINK[@]}" "$@"
}
train_row train_fp32
train_row train_bf16 "train:speed:precision=bf16"
train_row train_fp16 "train:speed:precision=fp16"
train_row train_nhwc_fused_prefetch "train:speed:channels_last=true" "train:speed:optimizer_impl=fused" \
    "datasets:train:prefetch_mode=cuda"
train_row train_bf16_nhwc_compile "train:speed:precision=bf16" "train:speed:channels_last=true" \
    "train:speed:compile=true"

# -- DDP smoke test: torchrun, one process, nccl ---------------------------------------------------
PORT=$("$PY" -c "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])")
row ddp_nccl_1proc train_detail "$PY" -m torch.distributed.run --nproc_per_node=1 --master_port="$PORT" \
    train.py -opt options/esrgan_x4.yml --launcher pytorch --force_yml name=gpu_check_ddp "${SHRINK[@]}" \
    "train:total_iter=20" "val:val_freq=20" "logger:save_checkpoint_freq=20"

# -- Real-ESRGAN degradation step on CUDA ----------------------------------------------------------
if [[ -f realesrgan_ext/data/degradations.py ]]; then
    row degradations_cuda last_line "$PY" - <<'EOF'
import time

import torch

import realesrgan_ext

realesrgan_ext.register()  # basicsr's fixes first: the JPEG step is basicsr's DiffJPEG
from realesrgan_ext.data.degradation_options import DegradationOptions  # noqa: E402
from realesrgan_ext.data.degradations import degrade, make_jpeger  # noqa: E402

hr = torch.rand(16, 3, 256, 256, device="cuda")
jpeger = make_jpeger("cuda")
lq = degrade(hr, DegradationOptions(), 4, jpeger=jpeger, seed=0)  # warm-up
torch.cuda.synchronize()
start = time.perf_counter()
for seed in range(5):
    lq = degrade(hr, DegradationOptions(), 4, jpeger=jpeger, seed=seed)
torch.cuda.synchronize()
assert lq.shape == (16, 3, 64, 64) and lq.device.type == "cuda" and torch.isfinite(lq).all()
print(f"{(time.perf_counter() - start) / 5 * 1000:.1f} ms per batch of 16 x 256px")
EOF
else
    skip_row degradations_cuda "realesrgan_ext/data/degradations.py not on this branch yet"
fi

# -- inference benchmark on CUDA: fp32 / fp16 / bf16 (and auto), whole process, against RealESRGANer ---------
row inference_benchmark last_line "$PY" scripts/benchmark_inference.py --device cuda --sizes 256 --repeat 1

# -- video benchmark on CUDA (issue 16's 3x target): 480p, x2 and x4, against RealESRGANer in fp16 ------------
row video_benchmark last_line "$PY" scripts/benchmark_video.py --device cuda --frames 24 --configs realesrganer ours

echo
printf '%-26s %-5s %6s  %s\n' "check" "state" "time" "detail (logs: $LOGS/NAME.log)"
printf '%s\n' "${ROWS[@]}"
if [[ $FAILED != 0 ]]; then
    echo "gpu_check: FAILED (see the logs above)"
    exit 1
fi
echo "gpu_check: all passed"
