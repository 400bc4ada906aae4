# Sourced by scripts/setup, build-lib and bench (from the checkout's root).
# ziglang and cargo-zigbuild live in a Python virtual environment in .venv/,
# with openapi-spec-validator (the server's OpenAPI test validates with it):
# Debian's python3 refuses `pip install` outside one (PEP 668), and the
# project must not touch the system interpreter.
python_tools_venv=.venv

# Puts the venv first on PATH: cargo-zigbuild finds zig via `python3 -m ziglang`.
python_tools_path() {
    [ -x "$python_tools_venv/bin/cargo-zigbuild" ] && export PATH="$PWD/$python_tools_venv/bin:$PATH"
    return 0
}

python_tools_ok() {
    command -v cargo-zigbuild >/dev/null && python3 -m ziglang version >/dev/null 2>&1
}

python_tools_install() {
    python_tools_path
    python_tools_ok && python3 -c 'import openapi_spec_validator' 2>/dev/null && return 0
    printf 'setup: installing ziglang, cargo-zigbuild and openapi-spec-validator from PyPI into %s/ (about 420 MB)\n' "$python_tools_venv"
    # Debian's interpreter: a python3 earlier on PATH (pyenv, conda) may lack venv.
    local python=/usr/bin/python3
    [ -x "$python" ] || python=python3
    "$python" -m venv "$python_tools_venv"
    "$python_tools_venv/bin/python3" -m pip install -q --disable-pip-version-check ziglang cargo-zigbuild openapi-spec-validator
    python_tools_path
}
