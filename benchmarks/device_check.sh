#!/usr/bin/env bash
# The prepared device run (a CUDA machine, repository root, a few minutes): the GPU tests,
# the CPU/GPU check, grouped and rolling fits with the data on the GPU, and the iterative
# solvers' time to a 1e-6 gap. Logs go to $OUT (or ./device-out) for benchmarks/results/.
#
#   bash benchmarks/device_check.sh
set -u -o pipefail
out=${OUT:-device-out}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
log="$out/device.log"
{
    echo "== versions"
    $py -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
    nproc
    echo "== pytest (gpu marker)"
    timeout 240 $py -m pytest -q -p no:cacheprovider -p no:benchmark -m gpu -n 4 tests/test_cuda.py tests/test_exact.py
    echo "== gpu_check"
    timeout 180 $py benchmarks/gpu_check.py
    echo "== grouped (torchlinreg on the CPU and on the GPU, statsmodels loop)"
    timeout 240 $py benchmarks/grouped.py --full --device cuda --repeat 3 \
        --skip numpy_lstsq_loop --skip torch_lstsq_padded --skip statsmodels_rolling
    echo "== iterative_gpu (time to a 1e-6 gap)"
    timeout 180 $py benchmarks/iterative_gpu.py --skip-corpus --json "$out/iterative.json"
} 2>&1 | tee "$log"
