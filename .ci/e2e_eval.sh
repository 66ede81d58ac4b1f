#!/usr/bin/env bash
# End-to-end accuracy check against a real model, run by .ci/run after the unit suite:
# starts llama.cpp's server with SmolLM2-135M-Instruct (../shared/peers/llama-server.sh, which builds
# and caches it the first time, ~6 min), runs tests/e2e on the real GSM8K test set, stops the server.
# When the peer cannot be started the test is reported as skipped, with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${EVALSVC_PEER_SCRIPT:-../shared/peers/llama-server.sh}
PORT=${EVALSVC_LLAMA_PORT:-$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

if [ ! -f "$PEER" ]; then
  export EVALSVC_LLAMA_SKIP_REASON="llama-server peer script not found at $PEER (set EVALSVC_PEER_SCRIPT)"
elif URL=$(bash "$PEER" start "$PORT" 2>/tmp/evalsvc-e2e-peer.$$.log); then
  trap 'bash "$PEER" stop "$PORT" || true' EXIT
  export EVALSVC_LLAMA_URL=$URL
  echo "e2e_eval: llama-server at $URL"
else
  export EVALSVC_LLAMA_SKIP_REASON="llama-server peer did not start: $(tail -n 3 /tmp/evalsvc-e2e-peer.$$.log | tr '\n' ' ')"
fi
rm -f /tmp/evalsvc-e2e-peer.$$.log
python -m pytest -q -rs -s -m e2e tests/e2e -p no:cacheprovider
