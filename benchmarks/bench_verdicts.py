"""Measure the checker's false-alarm rate and miss rate on random layers.

A *false alarm* is a random correct layer that the checker fails, leaves INCOMPLETE or
refuses (CheckError). A *miss* is a detectable mutant — a correct layer with one planted
bug that changes some gradient element by more than 2 % — that the checker passes.

Cases alternate between the two sources of tests/: even seeds draw a chain of reference
layers (``mutants.py``: mutant kinds round-robin), odd seeds a layer family
(``catalogue.py``: families round-robin, and each family's bugs round-robin in turn).
Case ``i`` is drawn from ``np.random.default_rng(i)``, so every reported case is
reproducible from its seed::

    python benchmarks/bench_verdicts.py --cases 8000
    python benchmarks/bench_verdicts.py --show correct:66     # print one case's report
    python benchmarks/bench_verdicts.py --show mutant:67
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

from catalogue import FAMILIES, FamilyCase, family_case, family_mutant  # tests/: no package
from mutants import KINDS, Case, correct_case, mutant_case

CHAINS = "chains"
FAMILY_NAMES = list(FAMILIES)
OUTCOMES = ("FAILED", "INCOMPLETE", "refused")


@dataclass
class Tally:
    """Outcomes of one side (correct layers or mutants), broken down by labels."""

    total: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, labels: list[str], outcome: str, wrong: bool, example: str) -> None:
        for label in ["all", *labels]:
            self.total[label] += 1
            self.wrong[label] += wrong
            self.outcomes[label, outcome] += 1
        if wrong and len(self.examples) < 40:
            self.examples.append(example)


def correct_for(seed: int) -> Case:
    """The correct case of ``seed``: a chain for even seeds, a family's layer for odd."""
    rng = np.random.default_rng(seed)
    if seed % 2 == 0:
        return correct_case(rng)
    return family_case(rng, FAMILY_NAMES[seed // 2 % len(FAMILY_NAMES)])


def mutant_for(seed: int) -> Case | None:
    """The mutant of ``seed`` (None when no detectable one was found)."""
    rng = np.random.default_rng(seed)
    turn = seed // 2
    if seed % 2 == 0:
        return mutant_case(rng, kind=KINDS[turn % len(KINDS)])
    family = FAMILIES[FAMILY_NAMES[turn % len(FAMILY_NAMES)]]
    bug = family.bugs[turn // len(FAMILY_NAMES) % len(family.bugs)]
    return family_mutant(rng, family.name, bug=bug)


def _labels(case: Case) -> tuple[str, str | None]:
    """(family, bug): ``chains`` and the mutation kind for a chain."""
    if isinstance(case, FamilyCase):
        return case.family, case.bug
    return CHAINS, case.mutation.kind if case.mutation is not None else None


def _verdict(case: Case) -> tuple[str, str]:
    """(outcome, summary): ``passed``, ``FAILED``, ``INCOMPLETE`` or ``refused``."""
    try:
        report = gradcheck.check(case.layer, *case.inputs)
    except gradcheck.CheckError as error:
        return "refused", f"CheckError: {error}"
    return str(report.verdict), report.summary()


def run(cases: int, start: int) -> tuple[Tally, Tally, Counter[str], float]:
    correct, mutants, absent = Tally(), Tally(), Counter[str]()
    started = time.perf_counter()
    for i in range(start, start + cases):
        case = correct_for(i)
        outcome, summary = _verdict(case)
        family, _ = _labels(case)
        labels = [f"family {family}", f"dtype {case.dtype}"]
        if family == CHAINS:
            kinked = "near a kink" in case.description
            labels.append("chains near a kink" if kinked else "chains smooth")
        correct.add(labels, outcome, outcome != "passed", f"correct:{i}  {case}  ->  {summary}")

        mutant = mutant_for(i)
        if mutant is None:
            absent[f"seed parity {i % 2}"] += 1
            if i % 2:
                family = FAMILY_NAMES[i // 2 % len(FAMILY_NAMES)]
                bugs = FAMILIES[family].bugs
                absent[f"{family}/{bugs[i // 2 // len(FAMILY_NAMES) % len(bugs)]}"] += 1
            continue
        outcome, summary = _verdict(mutant)
        family, bug = _labels(mutant)
        labels = [f"family {family}", f"bug {family}/{bug}", f"dtype {mutant.dtype}"]
        mutants.add(labels, outcome, outcome == "passed", f"mutant:{i}  {mutant}")
    return correct, mutants, absent, time.perf_counter() - started


def _upper95(wrong: int, total: int) -> float:
    """One-sided 95 % upper bound of a rate (exact binomial; 3/n when nothing was seen)."""
    if total == 0:
        return float("nan")
    if wrong == total:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(0.95, wrong + 1, total - wrong))


def _table(title: str, tally: Tally, what: str, prefix: str) -> list[str]:
    """One Markdown table of the labels that start with ``prefix`` (and ``all``)."""
    lines = [
        title,
        "",
        f"| group | cases | {what} | rate | 95 % upper bound | " + " | ".join(OUTCOMES) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(OUTCOMES),
    ]
    for label in ["all", *sorted(k for k in tally.total if k.startswith(prefix))]:
        n, k = tally.total[label], tally.wrong[label]
        counts = " | ".join(str(tally.outcomes[label, o]) for o in OUTCOMES)
        name = label.removeprefix(prefix)
        lines.append(f"| {name} | {n} | {k} | {k / n:.2%} | {_upper95(k, n):.2%} | {counts} |")
    return lines


def show(which: str) -> None:
    side, _, number = which.partition(":")
    if side not in ("correct", "mutant"):
        raise SystemExit(f"--show takes correct:SEED or mutant:SEED, not {which!r}")
    seed = int(number)
    case = correct_for(seed) if side == "correct" else mutant_for(seed)
    print(case)
    if case is not None:
        try:
            print(gradcheck.check(case.layer, *case.inputs))
        except gradcheck.CheckError as error:
            print(f"CheckError: {error}")


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
    no_mutant = ", ".join(f"{k}: {v}" for k, v in sorted(absent.items()))
    lines = [
        f"{args.cases} correct layers and {args.cases} mutant draws (seeds {args.start}.."
        f"{args.start + args.cases - 1}) in {seconds:.0f} s",
        f"({sum(v for k, v in absent.items() if k.startswith('seed parity'))} mutant draws "
        f"found no detectable mutant and are not counted: {no_mutant or 'none'})",
        "",
        *_table(
            "False alarms (correct layer failed, left INCOMPLETE or refused), by family:",
            correct,
            "false alarms",
            "family ",
        ),
        "",
        *_table("False alarms by dtype:", correct, "false alarms", "dtype "),
        "",
        *_table("False alarms of chains, by kink:", correct, "false alarms", "chains "),
        "",
        *_table("Misses (detectable mutant passed), by family:", mutants, "misses", "family "),
        "",
        *_table("Misses by bug:", mutants, "misses", "bug "),
        "",
        *_table("Misses by dtype:", mutants, "misses", "dtype "),
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
