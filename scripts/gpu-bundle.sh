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
# Runs on the GPU machine: validation, the kernel workbench and the PGD-AT race; results in out/.
# QUICK=1: tiny sizes, to check the bundle itself works (not for numbers).
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ADVPRUNE_KERNELS="$PWD/kernels" ADVPRUNE_CACHE_DIR="$PWD/out/cache"
mkdir -p out
a=bin/advprune
dev=${ADVPRUNE_DEVICE:-opencl}
if [ "${QUICK:-0}" = 1 ]; then size=(--batch 2 --repeats 1); race=(--batch-size 4 --batches 1); else size=(--batch 128 --repeats 5); race=(--batches 5); fi
$a devices | tee out/devices.txt
$a validate --device "$dev" | tee out/validate.txt
$a bench-kernel --device "$dev" "${size[@]}" | tee out/bench-kernel.txt
$a bench-kernel --device "$dev" "${size[@]}" --json > out/bench-kernel.json
for arch in smallcnn resnet18; do
  $a profile --device "$dev" --arch "$arch" "${race[@]}" | tee "out/profile-$arch.txt"
  $a profile --device "$dev" --arch "$arch" "${race[@]}" --kernels > "out/kernels-$arch.txt"
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    python3 scripts/bench_pytorch.py --arch "$arch" --device cuda "${race[@]}" | tee "out/pytorch-cuda-$arch.json"
  else
    echo "(no CUDA PyTorch here: the PyTorch side was not measured)" | tee "out/pytorch-cuda-$arch.json"
  fi
done
RUN
chmod +x "$dir/run.sh"
tar -C "$(dirname "$dir")" -czf "$dir.tar.gz" "$(basename "$dir")"
echo "bundle: $dir ($(du -sh "$dir" | cut -f1)), $dir.tar.gz; on the GPU machine: tar xzf, then ./$(basename "$dir")/run.sh"
