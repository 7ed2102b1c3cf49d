#!/usr/bin/env bash
# Builds a self-contained bundle to measure advprune on another Linux machine with an OpenCL GPU
# driver (e.g. NVIDIA's): a static-stdlib advprune, kernels/, every shared library it loads that
# is not the C runtime (OpenCL ICD loader, CLBlast, OpenBLAS, ...), the PyTorch peer scripts, and
# run.sh, which runs validate, the kernel workbench and the PGD-AT race there and writes what it
# measured under out/.
# Usage: scripts/gpu-bundle.sh [DIR]   (default: bundle/advprune-gpu; a .tar.gz is made next to it)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bundle/advprune-gpu}
# A separate scratch path, so the static build does not replace the everyday one.
swift build -c release --static-swift-stdlib --scratch-path .build-static
bin=$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/advprune
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/lib" "$dir/scripts"
cp "$bin" "$dir/bin/"
strip "$dir/bin/advprune" 2>/dev/null || true
cp -r kernels "$dir/"
cp scripts/bench_pytorch.py scripts/torch_models.py "$dir/scripts/"
# The C runtime comes from the target machine; everything else travels.
ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s.so*) ;;
    *) cp -L "$lib" "$dir/lib/" ;;
  esac
done
cat > "$dir/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs on the GPU machine: validation, the kernel workbench, the PGD-AT race (our kernels, the
# CLBlast baseline, PyTorch on CUDA), the sparse crossover and a sweep of GPU tunables; out/.
# QUICK=1: tiny sizes, to check the bundle itself works (not for numbers). STEP_TIMEOUT: seconds
# per step (default 240), so one hung step cannot cost the rest. SWEEP: tunable sets to race
# ("pix=8,rows=4 group=128 ..."), default a small grid around the GPU defaults.
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ADVPRUNE_KERNELS="$PWD/kernels" ADVPRUNE_CACHE_DIR="$PWD/out/cache"
mkdir -p out
# Containers often mount the driver's libraries without an ICD registry entry: register NVIDIA's
# OpenCL library for the bundled loader (beside whatever is registered) when none names it.
if [ -z "${OCL_ICD_VENDORS:-}" ] && ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
  icd=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1/{print $NF; exit}')
  [ -n "$icd" ] || icd=$(find /usr/lib /usr/lib64 /usr/local/nvidia -maxdepth 3 -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
  if [ -n "$icd" ]; then
    mkdir -p out/icd && cp /etc/OpenCL/vendors/*.icd out/icd/ 2>/dev/null
    echo "$icd" > out/icd/nvidia.icd
    export OCL_ICD_VENDORS="$PWD/out/icd" LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$icd")"
    echo "registered the OpenCL driver $icd"
  fi
fi
a=bin/advprune
dev=${ADVPRUNE_DEVICE:-opencl}
t=${STEP_TIMEOUT:-240}
step() { local name=$1; shift; echo "== $name: $*"; local s=$SECONDS; timeout "$t" "$@" > "out/$name" 2>&1; local rc=$?; tail -n 40 "out/$name"; echo "== $name: rc=$rc, $((SECONDS - s)) s"; }
if [ "${QUICK:-0}" = 1 ]; then size=(--batch 2 --repeats 1); race=(--batch-size 4 --batches 1); sweep_size=(--batch 2 --repeats 1); crossover=smallcnn
else size=(--batch 32 --repeats 5); race=(--batches 5); sweep_size=(--batch 64 --repeats 3); crossover=resnet18; fi
command -v nvidia-smi >/dev/null && nvidia-smi -L
step devices.txt $a devices
step validate.txt $a validate --device "$dev"
for arch in smallcnn resnet18; do
  step "profile-$arch.txt" $a profile --device "$dev" --arch "$arch" "${race[@]}" --kernels
  step "profile-clblast-$arch.txt" $a profile --device "$dev" --arch "$arch" "${race[@]}" --engine clblast
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    step "pytorch-cuda-$arch.json" python3 scripts/bench_pytorch.py --arch "$arch" --device cuda "${race[@]}"
    step "pytorch-cuda-fp32-$arch.json" python3 scripts/bench_pytorch.py --arch "$arch" --device cuda --strict-fp32 "${race[@]}"
  else
    echo "(no CUDA PyTorch here: the PyTorch side was not measured)" | tee "out/pytorch-cuda-$arch.json"
  fi
done
step bench-kernel.txt $a bench-kernel --device "$dev" "${size[@]}"
step sparse-crossover.txt $a profile --device "$dev" --arch "$crossover" --sparse-crossover "${race[@]}"
i=0
# winograd=1: the 3x3 stride-1 layers as Winograd F(4x4, 3x3); few_rb=4 / 2: the image's input
# gradient on conv_few_rows_dx (the stem's row; 2 makes twice the work-groups); both off on GPUs
# until measured there.
for set in ${SWEEP:-tm=64,tn=128 tm=128,tn=64 tm=128,tn=128 tm=64,tn=64,tk=8 tm=128,tn=128,tk=8 tm=64,tn=256,tk=8 tm=0 wtaps=4 wtaps=16 winograd=1 few_rb=4 few_rb=2}; do
  args=(); IFS=, read -ra kv <<< "$set"; for x in "${kv[@]}"; do args+=(--set "$x"); done
  step "sweep-$i-$set.json" $a bench-kernel --device "$dev" --variant native --models resnet18 "${sweep_size[@]}" "${args[@]}" --json
  i=$((i + 1))
done
RUN
chmod +x "$dir/run.sh"
tar -C "$(dirname "$dir")" -czf "$dir.tar.gz" "$(basename "$dir")"
echo "bundle: $dir ($(du -sh "$dir" | cut -f1)), $dir.tar.gz; on the GPU machine: tar xzf, then ./$(basename "$dir")/run.sh"
