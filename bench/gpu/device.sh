#!/bin/bash
# Steps run on the GPU device machine, one per `run` call, issued back to back (the machine
# stays warm only 30 s after a call). Usage: bash bench/gpu/device.sh 1|2|wait
#   1    (carry .gpu/p1): vLLM 0.25.0 minus FA3 into /tmp/site; start writing the 7.24B model.
#   2    (carry .gpu/p2): vLLM's missing wheels + FA3; import check; start bench.gpu.lifecycle; wait.
#        RUNNER_ARGS (e.g. "--phases warm,snapshot,throughput --rounds 3") go to the runner;
#        RUNNER picks it (default bench.gpu.lifecycle; bench.gpu.servers for the three-way run);
#        MF_SOURCE=snapshot runs the platform code packed in .gpu/p2/modelfleet (a committed
#        tree) instead of the working tree, which other work may be changing.
#   wait (no carry):      wait for the runner; collect again.
# Everything lives outside the repo (/tmp), because a call that carries another folder removes the
# earlier one. Results land in /tmp/gpures and are copied to $OUT at the end of every call.
set -o pipefail
RES=/tmp/gpures
untar() { python3 -c "import tarfile,sys,time; t=time.time(); tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='fully_trusted'); print('unpacked', sys.argv[1], round(time.time()-t,1), 's')" "$1" "$2"; }
collect() {
  cp $RES/gpu-lifecycle.json $RES/gpu-throughput.json $RES/gpu-servers.json $RES/gpu-gateway.json /tmp/runner.log /tmp/make_model.log "$OUT/" 2>/dev/null
  (cd $RES 2>/dev/null && tar czf "$OUT/logs.tgz" logs bench-*.json 2>/dev/null)
}
wait_runner() {  # $1: seconds at most
  local end=$((SECONDS + $1))
  # Collect every ~15 s as well: a call cut short (device time spent) still returns what was measured.
  local n=0
  while [ $SECONDS -lt $end ] && ! grep -q "ALL DONE" /tmp/runner.log 2>/dev/null; do
    sleep 3; n=$((n + 1)); [ $((n % 5)) -eq 0 ] && collect
  done
  cat /tmp/runner.log; collect
}
case "$1" in
1)
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
  python3 -V; nproc; free -g | head -2; df -h /tmp | tail -1
  mkdir -p /tmp/site /tmp/tok && cp .gpu/p1/tok/* /tmp/tok/ && cp .gpu/p1/make_model.py /tmp/
  setsid nohup python3 /tmp/make_model.py /tmp/tok /tmp/model > /tmp/make_model.log 2>&1 < /dev/null &
  untar .gpu/p1/vllm_rest.tar.xz /tmp/site || exit 1
  cat /tmp/make_model.log
  ;;
2)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/p2/whl/*.whl || exit 1
  untar .gpu/p2/fa3.tar.xz /tmp/site || exit 1
  # The runner and the project's code, copied out of the working tree so later calls cannot move them.
  rm -rf /tmp/mfb && mkdir -p /tmp/mfb/bench && cp -r bench/__init__.py bench/gpu /tmp/mfb/bench/
  export PYTHONPATH=/tmp/mfb:/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
  CHECK="import modelfleet.runtime.engine, modelfleet.runtime.edge, modelfleet.runtime.command, modelfleet.spec.model${EXTRA_CHECK:-}"
  if [ "$MF_SOURCE" != snapshot ] && cp -r platform/modelfleet /tmp/mfb/ && python3 -c "$CHECK"; then echo "modelfleet: working tree"
  else echo "modelfleet: working tree does not import; using the snapshot packed with p2"
    rm -rf /tmp/mfb/modelfleet && cp -r .gpu/p2/modelfleet /tmp/mfb/ && python3 -c "$CHECK" || exit 1
    echo "modelfleet: snapshot of commit $(cat .gpu/p2/modelfleet.commit 2>/dev/null)"
  fi
  python3 -c "
import time; t=time.time()
import vllm, vllm.entrypoints.openai.api_server, vllm.benchmarks.serve, pydantic, starlette, uvicorn
import vllm.vllm_flash_attn.flash_attn_interface as f
print('vllm', vllm.__version__, 'FA3', f.FA3_AVAILABLE, 'pydantic', pydantic.VERSION, 'starlette', starlette.__version__, 'uvicorn', uvicorn.__version__, 'import', round(time.time()-t,1), 's')" || exit 1
  for _ in $(seq 120); do [ -f /tmp/model/DONE ] && break; sleep 1; done
  cat /tmp/make_model.log; [ -f /tmp/model/DONE ] || exit 1
  mkdir -p $RES && cd /tmp/mfb
  setsid nohup python3 -m ${RUNNER:-bench.gpu.lifecycle} --model /tmp/model --out $RES ${RUNNER_ARGS:-} > /tmp/runner.log 2>&1 < /dev/null &
  cd - > /dev/null
  wait_runner $(( ${WAIT:-585} - SECONDS ))
  ;;
wait)
  wait_runner ${WAIT:-570}
  ;;
esac
