#!/usr/bin/env bash
# Build the serve-only virtual environment. Dockerfile.serve runs this script and
# tests/deploy/test_serve_install.py runs it too, so the image and its test install
# the same files in the same way.
#
# Usage: deploy/serve-install.sh VENV_DIR [REQUIREMENTS_FILE]
#   PYTHON  interpreter that creates the venv (default: python3)
set -euo pipefail

venv=${1:?usage: serve-install.sh VENV_DIR [REQUIREMENTS_FILE]}
requirements=${2:-requirements-serve.txt}
python=${PYTHON:-python3}

"$python" -m venv "$venv"
# Bytecode is compiled here (pip's default) because the image's user cannot write it later:
# without it every container start re-parses numpy, pydantic and fastapi from source.
"$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --progress-bar off \
    -r "$requirements"

site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Nothing installs into the image later: drop the installer itself.
"$venv/bin/python" -m pip uninstall --yes --quiet pip setuptools
# Test suites, and offline tooling the service never imports (quantisation and
# transformer tools run in the training environment; f2py and C headers build extensions).
# The service tests run in this stripped venv, which is what proves these are unused.
find "$site" -depth -type d \( -name tests -o -name test \) -exec rm -rf {} +
rm -rf "$site/onnxruntime/transformers" "$site/onnxruntime/quantization" "$site/onnxruntime/tools" \
    "$site/numpy/f2py" "$site/numpy/distutils" "$site/numpy/_core/include"
# onnxruntime's Python binding is self-contained (its ELF NEEDED list has no libonnxruntime, on
# x86_64 and aarch64); libonnxruntime.so.1.* is the C API library for other languages: 27-35 MB.
rm -f "$site"/onnxruntime/capi/libonnxruntime.so.*
