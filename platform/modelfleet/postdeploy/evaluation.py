"""The optional benchmark gate: an lm-eval task from the model folder, judged with a statistical rule.

Golden prompts catch a broken deploy; a benchmark catches a degraded one (a quantization
that costs accuracy). Model owners who want one declare ``[eval]`` in golden.toml: a JSON
lines file of ``{"question": ..., "answer": ...}`` in the model folder, and a pass rule.

The run is EleutherAI's lm-evaluation-harness (PyPI ``lm-eval``, the optional extra
``modelfleet[eval]``), its ``local-chat-completions`` model pointed at the endpoint, as
vLLM's own CI runs it (``.buildkite/lm-eval-harness``: a task, a limit, and an expected
value with a relative tolerance). The task is written here as an lm-eval YAML task
(``dataset_path: json`` over the local file, so nothing is downloaded) whose score is
``acc``: the answer contains the expected text, case-insensitive.

Two pass rules, both in the open:

- ``relative``: ``acc >= expected x (1 - rtol)`` -- vLLM's rule, for a task measured on
  the reviewed model;
- ``wilson``: the Wilson score lower bound of ``acc`` over ``n`` questions at the given
  confidence must reach ``min_accuracy`` -- the rule when there is no reference run: it
  asks for more questions before it believes a high score.

lm-eval runs in a subprocess (``python -m lm_eval``): it imports torch and datasets, far too
heavy for the CLI's own process, and its output folder is a temporary one removed after.
The interpreter is this one, or ``FLEET_LM_EVAL_PYTHON`` where lm-eval lives in an
environment of its own (its pins need not agree with the platform's).
Questions and answers are the repo's fixtures; lm-eval's sample log is not written.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import NormalDist

from modelfleet.postdeploy.smoke import CheckFailed
from modelfleet.runtime.tokens import Credentials
from modelfleet.spec.golden import EvalSpec as EvalDeclaration
from modelfleet.spec.golden import GoldenSpec, RelativeRule, WilsonRule

TASK_NAME = "fleet_golden_eval"
PYTHON_ENV = "FLEET_LM_EVAL_PYTHON"
EVAL_TIMEOUT_SECONDS = 1800
_TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  max_gen_toks: {max_tokens}
  do_sample: false
  temperature: 0
process_results: !function fleet_eval_utils.process_results
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
_UTILS = '''\
def process_results(doc, results):
    """1 when the answer's text is in the response (case-insensitive), else 0."""
    return {"acc": float(str(doc["answer"]).strip().lower() in results[0].lower())}
'''


def wilson_lower_bound(successes: int, total: int, confidence: float) -> float:
    """The Wilson score interval's lower end for ``successes`` of ``total`` at two-sided ``confidence``."""
    if total <= 0:
        return 0.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return (centre - margin) / denominator


def judge_score(rule: WilsonRule | RelativeRule, accuracy: float, total: int) -> tuple[bool, str]:
    """(passed, detail) of ``accuracy`` over ``total`` questions under ``rule``."""
    if isinstance(rule, RelativeRule):
        floor = rule.expected * (1 - rule.rtol)
        verdict = "at least" if accuracy >= floor else "below"
        return accuracy >= floor, (
            f"acc {accuracy:.3f} over {total} questions, {verdict} {floor:.3f} "
            f"(expected {rule.expected:g} - {rule.rtol:g} relative)"
        )
    bound = wilson_lower_bound(round(accuracy * total), total, rule.confidence)
    verdict = "at least" if bound >= rule.min_accuracy else "below"
    return bound >= rule.min_accuracy, (
        f"acc {accuracy:.3f} over {total} questions; Wilson {rule.confidence:g} lower bound {bound:.3f}, "
        f"{verdict} {rule.min_accuracy:g}"
    )


def lm_eval_command(endpoint_url: str, served_name: str, declaration: EvalDeclaration, task_dir: Path) -> list[str]:
    """The ``python -m lm_eval`` command line for the task written in ``task_dir``."""
    model_args = ",".join(
        [
            f"model={served_name}",
            f"base_url={endpoint_url.rstrip('/')}/v1/chat/completions",
            "num_concurrent=1",
            "max_retries=3",
            "tokenized_requests=False",
        ]
    )
    command = [
        os.environ.get(PYTHON_ENV) or sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "local-chat-completions",
        "--model_args",
        model_args,
        "--tasks",
        TASK_NAME,
        "--include_path",
        str(task_dir),
        "--apply_chat_template",
        "--output_path",
        str(task_dir / "out"),
    ]
    if declaration.limit is not None:
        command += ["--limit", str(declaration.limit)]
    return command


def run_eval(url: str, served: str, credentials: Credentials, golden: GoldenSpec, model_folder: str) -> str:
    """Run the ``[eval]`` task against the endpoint at ``url``; the detail, or CheckFailed."""
    declaration = golden.eval
    if declaration is None:
        raise CheckFailed("no [eval] table")
    data = (Path(model_folder) / declaration.task_file).resolve()
    with tempfile.TemporaryDirectory(prefix="fleet-eval-") as folder:
        task_dir = Path(folder)
        (task_dir / "task.yaml").write_text(
            _TASK_YAML.format(task=TASK_NAME, data=json.dumps(str(data)), max_tokens=declaration.max_tokens)
        )
        (task_dir / "fleet_eval_utils.py").write_text(_UTILS)
        # local-chat-completions sends OPENAI_API_KEY as its Bearer token: the proxy token, key.secret.
        env = {**os.environ, "OPENAI_API_KEY": credentials.api_key, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
        try:
            done = subprocess.run(
                lm_eval_command(url, served, declaration, task_dir),
                env=env,
                capture_output=True,
                text=True,
                timeout=EVAL_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"lm-eval did not finish within {EVAL_TIMEOUT_SECONDS}s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            if "No module named lm_eval" in done.stderr:
                last = "lm-eval is not installed: pip install 'modelfleet[eval]'"
            raise CheckFailed(f"lm-eval failed (exit {done.returncode}): {last[:200]}")
        accuracy, total = _read_results(task_dir / "out")
    passed, detail = judge_score(declaration.rule, accuracy, total)
    if not passed:
        raise CheckFailed(detail)
    return detail


def _read_results(folder: Path) -> tuple[float, int]:
    """(acc, questions scored) from lm-eval's results JSON (``results_<time>.json`` under the output path)."""
    files = sorted(folder.rglob("results_*.json"))
    if not files:
        raise CheckFailed(f"lm-eval wrote no results under {folder.name}/")
    results = json.loads(files[-1].read_text())
    scores = results["results"][TASK_NAME]
    samples = results.get("n-samples", {}).get(TASK_NAME, {})
    total = int(samples.get("effective") or samples.get("original") or 0)
    return float(scores["acc,none"]), total
