# Sourced by the GPU-machine scripts: configure and build the CUDA build
# directory $B (with cuDNN from beside the toolkit or from the pip wheel
# PyTorch uses) and set LD_LIBRARY_PATH so cuDNN finds its sub-libraries,
# which it opens by name, and NVRTC, with which its attention engines
# compile kernels at run time.
CUDNN_ROOT=${CUDNN_ROOT:-$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)}
[ -f "$B/build.ninja" ] || meson setup "$B" -Dcuda=enabled -Dgst=disabled -Dffmpeg=disabled \
    ${CUDNN_ROOT:+-Dcudnn_root=$CUDNN_ROOT} >/dev/null
NVRTC=$(python3 -c 'import nvidia.cuda_nvrtc as m; print(list(m.__path__)[0] + "/lib")' 2>/dev/null)
for d in "$NVRTC" /usr/local/cuda/lib64 "$CUDNN_ROOT/lib"; do
  [ -n "$d" ] && [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
ninja -C "$B" >/dev/null || exit 1
