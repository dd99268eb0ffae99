#!/usr/bin/env bash
# Regenerate the locked test stacks from pyproject.toml and locks/*.in with uv's resolver.
# Usage: bash locks/compile.sh   (needs `pip install uv`; the local torch CPU wheel lies in /opt/wheels)
set -euo pipefail
cd "$(dirname "$0")"
wheels=${FASTV_TORCH_WHEELS:-/opt/wheels}
ls "$wheels"/torch-2.13.0+cpu-*.whl >/dev/null || { echo "no torch 2.13.0+cpu wheel in $wheels (set FASTV_TORCH_WHEELS)" >&2; exit 1; }
compile() {  # compile OUTPUT [INPUT...]
    local out=$1; shift
    uv pip compile --quiet --upgrade --python-version 3.11 --find-links "$wheels" --no-emit-find-links \
        --custom-compile-command "bash locks/compile.sh" -o "$out" "$@"
}
for stack in oldest vllm newest; do
    compile "$stack.txt" ../pyproject.toml --extra dev --extra lmms -c constraints.in -c "$stack.in"
done
compile no-deps.txt --no-deps no-deps.in
