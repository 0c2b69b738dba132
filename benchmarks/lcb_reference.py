"""Child of `eval_agreement.py --only lcb`: grades programs with LiveCodeBench's own runner (``lcb_runner``).

Runs in the scratch venv the benchmark creates (numpy, pandas, tqdm), with a LiveCodeBench checkout on
``sys.path``; never imported by m2rl_slime. Each problem's evaluation sample is built as the runner's
``CodeGenerationProblem.get_evaluation_sample`` builds it (public then private tests, ``fn_name`` from the
problem's ``metadata.func_name``), every program is graded by ``codegen_metrics`` (6 s per test, the
runner's default; one generation per entry) and a program passes when every graded test is positive (the runner's pass@1 rule).

Usage: ``python lcb_reference.py LCB_CHECKOUT CASES.jsonl OUT.json``.
"""

from __future__ import annotations

import json
import sys


def evaluation_sample(problem: dict) -> dict:
    tests = json.loads(problem["public_test_cases"]) + json.loads(problem["private_test_cases"])
    fn_name = json.loads(problem["metadata"]).get("func_name")
    io = {"inputs": [t["input"] for t in tests], "outputs": [t["output"] for t in tests], "fn_name": fn_name}
    return {"input_output": json.dumps(io)}


def main() -> None:
    checkout, cases_path, out_path = sys.argv[1:4]
    sys.path.insert(0, checkout)
    from lcb_runner.evaluation.compute_code_generation_metrics import codegen_metrics

    with open(cases_path, encoding="utf-8") as f:
        cases = [json.loads(line) for line in f if line.strip()]
    # One entry per program (the runner requires the same number of generations for every problem).
    keys, samples, generations = [], [], []
    for case in cases:
        for program in case["programs"]:
            keys.append(f"{case['problem']['question_id']}:{program['name']}")
            samples.append(evaluation_sample(case["problem"]))
            generations.append([program["code"]])
    _, results, metadata = codegen_metrics(samples, generations, k_list=[1], num_process_evaluate=2, timeout=6)
    verdicts = {}
    for i, key in enumerate(keys):
        graded = [g if isinstance(g, bool) else int(g) for g in results[i][0]]
        verdicts[key] = {"pass": all(g > 0 for g in graded), "graded": graded, "metadata": metadata[i][0]}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(verdicts, f)


if __name__ == "__main__":
    main()
