r"""Write a seeded random sample of a shipped benchmark as a JSONL file for `archer-eval suite=files`,
e.g. to measure a base model's pass@k on training problems before choosing a task or a prompt
(never on the held-out split you will report):

    python experiments/sample_problems.py svamp1_train --n 40 --seed 1 --out probe.jsonl
    archer-eval suite=files 'suite.paths=[probe.jsonl]' suite.k=8 suite.sampling.temperature=0.7 \
      suite.sampling.max_new_tokens=64 model.path=~/.cache/archer/smollm2-135m-instruct \
      ++kinds.math.verifier.answer_reader=boxed_or_stated_number \
      "kinds.math.template.instruction='Solve it in one line and end with: The answer is <number>.'" \
      '+kinds.math.template.examples={_target_:archer.data.benchmarks.worked_examples,benchmark:svamp1_train,ids:[chal-1,chal-10,chal-12,chal-30]}'

Rows keep the benchmark's ids, problems and answers; `--exclude` drops ids (e.g. few-shot examples).
"""

from __future__ import annotations

import argparse
import json
import random

from archer.data import load_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark")
    parser.add_argument("--n", type=int, required=True, help="problems to keep")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle (random.Random)")
    parser.add_argument("--exclude", nargs="*", default=[], help="problem ids to leave out")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    samples = load_benchmark(args.benchmark)
    random.Random(args.seed).shuffle(samples)
    chosen = [s for s in samples if s.id not in set(args.exclude)][: args.n]
    with open(args.out, "w") as f:
        for s in chosen:
            f.write(json.dumps({"id": s.id, "problem": s.problem, "answer": s.answer}) + "\n")
    print(f"{len(chosen)} problems of {args.benchmark} (seed {args.seed}) -> {args.out}")


if __name__ == "__main__":
    main()
