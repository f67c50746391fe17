#!/usr/bin/env bash
# The wheel as a user gets it (`make test` runs this; CI too). Builds the wheel, installs it with
# [serve] into a fresh virtual environment (torch from the same pinned wheels as the Makefile),
# and from a temporary directory outside the checkout runs:
#   styletrans stylize -m starry_night on a bundled photo; styletrans demo;
#   styletrans serve with one /health/ready and one stylize request.
# HOME and STYLETRANS_CACHE point into the temporary directory during the runs: no VGG weights,
# no user models, nothing from the checkout. Everything is removed at the end, pass or fail.
#   tests/wheel_smoke.sh                 # PYTHON=python3.11 tests/wheel_smoke.sh to pick the interpreter
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/styletrans-wheel.XXXXXX")"
SERVER=""
START=$SECONDS

cleanup() {
    if [[ -n "$SERVER" ]] && kill -0 "$SERVER" 2>/dev/null; then
        kill "$SERVER" && wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
step() { echo "wheel_smoke [$((SECONDS - START)) s] $*"; }

step "fresh virtual environment in $WORK"
"$PYTHON" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
# The venv's own pip, as a user has it. --no-compile: .pyc files are only a cache, and compiling
# torch's thousands of modules is a good part of the install time.
PIP=("$PY" -m pip install -q --no-compile)

# Built from a copy of what the wheel is made of: setuptools' build/ in the checkout could
# carry stale files into the wheel.
step "building the wheel"
mkdir "$WORK/src"
cp -R "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/styletrans" "$WORK/src/"
"$PY" -m pip wheel -q --no-deps "$WORK/src" -w "$WORK/dist"
WHEEL="$(echo "$WORK"/dist/styletrans-*.whl)"
step "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"

step "installing torch and the wheel with [serve]"
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" "$WHEEL[serve]"

mkdir -p "$WORK/run" "$WORK/home"
cd "$WORK/run"
export HOME="$WORK/home" STYLETRANS_CACHE="$WORK/home/.cache/styletrans"
ST="$WORK/venv/bin/styletrans"

# The package is the installed one, with the bundled styles inside it.
"$PY" - <<'EOF'
import sys
from pathlib import Path

import styletrans
from styletrans.assets import bundled
from styletrans.inference.registry import bundled_models_dir

assert Path(sys.prefix) in Path(styletrans.__file__).parents, f"not the installed package: {styletrans.__file__}"
assert (bundled_models_dir() / "starry_night.int8.onnx").is_file(), sorted(bundled_models_dir().iterdir())
Path("photo.jpg").write_bytes(bundled("photos")["chelsea"].read_bytes())
EOF

step "styletrans stylize -m starry_night photo.jpg -o out/"
"$ST" stylize -m starry_night photo.jpg -o out/ --quiet
"$PY" - <<'EOF'
import numpy as np
from PIL import Image

photo, out = Image.open("photo.jpg").convert("RGB"), Image.open("out/photo_starry_night.jpg").convert("RGB")
assert out.size == photo.size, (out.size, photo.size)
change = np.abs(np.asarray(out, float) - np.asarray(photo, float)).mean()
assert change > 10, f"the output is barely changed from the photo (mean |diff| {change:.1f})"
EOF

step "styletrans demo"
"$ST" demo
"$PY" -c "from PIL import Image; size = Image.open('out/demo.jpg').size; assert min(size) > 1000, size"

step "styletrans serve: /health/ready and one request"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$ST" serve --port "$PORT" --max-batch-size 1 >serve.log 2>&1 &
SERVER=$!
if ! "$PY" - "$PORT" "$SERVER" <<'EOF'; then
import io
import os
import sys
import time
import urllib.error
import urllib.request

from PIL import Image

port, pid = sys.argv[1], int(sys.argv[2])
url = f"http://127.0.0.1:{port}"
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=5) as response:
            assert response.status == 200
            break
    except (urllib.error.URLError, ConnectionError):
        os.kill(pid, 0)  # raises once the server has exited
        assert time.monotonic() < deadline, "the server was not ready within 120 s"
        time.sleep(0.5)
request = urllib.request.Request(f"{url}/v1/stylize/starry_night?size=256", data=open("photo.jpg", "rb").read(),
                                 headers={"Content-Type": "image/jpeg"}, method="POST")
with urllib.request.urlopen(request, timeout=60) as response:
    assert response.status == 200 and response.headers["Content-Type"] == "image/png", response.headers
    assert response.headers["X-Style"] == "starry_night"
    assert max(Image.open(io.BytesIO(response.read())).size) == 256
EOF
    cat serve.log
    exit 1
fi
kill "$SERVER" && wait "$SERVER" 2>/dev/null || true
SERVER=""
step "passed"
