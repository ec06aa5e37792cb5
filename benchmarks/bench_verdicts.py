"""Measure the checker's false-alarm rate and miss rate on random layers.

A *false alarm* is a random correct layer (tests/mutants.py: ``correct_case``) that the
checker fails or refuses (CheckError). A *miss* is a detectable mutant (``mutant_case``:
a sign flip, dropped term, factor error, transposition, perturbed element, swap or stale
cache that changes some gradient element by more than 2 %) that the checker passes.

Case ``i`` is drawn from ``np.random.default_rng(i)``; mutant kinds go round-robin, so
every reported case is reproducible from its seed::

    python benchmarks/bench_verdicts.py --cases 6000
    python benchmarks/bench_verdicts.py --show correct:66     # print one case's report
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gradcheck

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mutants import KINDS, Case, correct_case, mutant_case  # tests/ is not a package


@dataclass
class Tally:
    """Counts of one side (correct layers or mutants), broken down by a label."""

    total: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, labels: list[str], wrong: bool, example: str) -> None:
        for label in ["all", *labels]:
            self.total[label] += 1
            self.wrong[label] += wrong
        if wrong and len(self.examples) < 25:
            self.examples.append(example)


def _verdict(case: Case) -> tuple[bool | None, str]:
    """(passed, summary); passed is None when the checker refused with CheckError."""
    try:
        report = gradcheck.check(case.layer, *case.inputs)
    except gradcheck.CheckError as error:
        return None, f"CheckError: {error}"
    return report.passed, report.summary()


def _mutant_seed_kind(i: int) -> str:
    return KINDS[i % len(KINDS)]


def run(cases: int, start: int) -> tuple[Tally, Tally, int, float]:
    correct, mutants, absent = Tally(), Tally(), 0
    started = time.perf_counter()
    for i in range(start, start + cases):
        case = correct_case(np.random.default_rng(i))
        passed, summary = _verdict(case)
        kinked = "near a kink" in case.description
        labels = [str(case.dtype), "near-kink" if kinked else "smooth"]
        correct.add(labels, passed is not True, f"correct:{i}  {case}  ->  {summary}")

        kind = _mutant_seed_kind(i)
        mutant = mutant_case(np.random.default_rng(i), kind=kind)
        if mutant is None:
            absent += 1
            continue
        passed, summary = _verdict(mutant)
        mutants.add([kind, str(mutant.dtype)], passed is True, f"mutant:{i}  {mutant}")
    return correct, mutants, absent, time.perf_counter() - started


def _upper95(wrong: int, total: int) -> float:
    """One-sided 95 % upper bound of a rate (exact binomial; 3/n when nothing was seen)."""
    if total == 0:
        return float("nan")
    if wrong == total:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(0.95, wrong + 1, total - wrong))


def _table(title: str, tally: Tally, what: str) -> list[str]:
    lines = [f"{title}", "", f"| group | cases | {what} | rate | 95 % upper bound |",
             "|---|---:|---:|---:|---:|"]
    for label in ["all", *sorted(k for k in tally.total if k != "all")]:
        n, k = tally.total[label], tally.wrong[label]
        lines.append(f"| {label} | {n} | {k} | {k / n:.2%} | {_upper95(k, n):.2%} |")
    return lines


def show(which: str) -> None:
    side, _, number = which.partition(":")
    seed = int(number)
    rng = np.random.default_rng(seed)
    case = correct_case(rng) if side == "correct" else mutant_case(
        rng, kind=_mutant_seed_kind(seed)
    )
    print(case)
    if case is not None:
        print(gradcheck.check(case.layer, *case.inputs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=6000, help="correct layers and mutants")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--show", metavar="SIDE:SEED", help="print one case, e.g. correct:66")
    args = parser.parse_args(argv)
    if args.show:
        show(args.show)
        return 0
    correct, mutants, absent, seconds = run(args.cases, args.start)
    lines = [
        f"{args.cases} correct layers and {args.cases} mutant draws (seeds {args.start}.."
        f"{args.start + args.cases - 1}) in {seconds:.0f} s",
        f"({absent} mutant draws found no detectable mutant and are not counted)",
        "",
        *_table("False alarms (correct layer failed or refused):", correct, "false alarms"),
        "",
        *_table("Misses (detectable mutant passed):", mutants, "misses"),
        "",
        "First false alarms:" if correct.examples else "No false alarm.",
        *correct.examples,
        "",
        "First misses:" if mutants.examples else "No miss.",
        *mutants.examples,
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

