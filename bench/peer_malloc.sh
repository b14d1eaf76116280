# Sourced by the benches that run Python peers (PyTorch, Keras/TensorFlow): raises glibc
# malloc's thresholds so that the peers run at their best.
# glibc's malloc hands large blocks back to the kernel when they are freed, so a process that
# runs one small network fresh page-faults its activations in again on every call: PyTorch ran
# EfficientNet-Lite0 alone at 26 images/s, but at 49 after Inception V3 in the same process
# had raised malloc's thresholds, and at 55 alone with the thresholds raised up front; Keras'
# MobileNetV2 at 65 and 99 (bench/backbones.sh). cxr's allocator keeps freed memory for reuse
# itself (cxr_core::allocator), so this changes nothing for cxr.
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824
