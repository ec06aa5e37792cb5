"""Measure whether gradcheck's error bars hold: numerical values against the true gradient.

For every correct case of every family — the catalogue's (``tests/catalogue.py``), the
chains of ``tests/mutants.py`` and the stressors off the home ground
(``tests/stressors.py``) — every element gradcheck differentiates numerically is compared
with the true gradient (the correct layer's own backward in ``np.longdouble``;
``tests/calibration.py`` says how). An element is *outside its bar* when
``|numerical − true| > error bar``; the target (issue 19) is fewer than 1 in 10,000, in
every family and for every engine. Elements outside ``2·bar`` are counted too, to show
how far the broken promises go.

Case ``SEED`` of a family is drawn from ``np.random.default_rng(SEED)`` and checked with
``seed=SEED``, so every element listed is reproducible::

    python benchmarks/bench_calibration.py --cases 200
    python benchmarks/bench_calibration.py --cases 200 --mode full
    python benchmarks/bench_calibration.py --cases 50 --family outlier,offset-norm
    python benchmarks/bench_calibration.py --show outlier:17 --mode full
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from calibration import (  # tests/: no package
    EXTENDED,
    STATUS_NAMES,
    TRUTH_DTYPE,
    Group,
    NoTruthError,
    Source,
    Tally,
    compare_report,
    describe_dtype,
    draw,
    engine_name,
    run,
    sources,
    true_gradients,
)

import gradcheck
from gradcheck.vocabulary import Status

HEADER = (
    "| {what} | compared | outside 1·bar | share | 95 % upper | outside 2·bar "
    "| share | 95 % upper | median err/bar | max err/bar | unresolved | excluded "
    "| kinks (outside 1·bar) |"
)


def _upper95(wrong: int, total: int) -> float:
    """One-sided 95 % upper bound of a rate (exact binomial; about 3/n when nothing was
    seen), as in bench_verdicts."""
    if total == 0:
        return float("nan")
    if wrong == total:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(0.95, wrong + 1, total - wrong))


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.2e}" if whole else "–"


def _number(value: float) -> str:
    return "–" if not np.isfinite(value) and np.isnan(value) else f"{value:.3g}"


def _row(name: str, g: Group) -> str:
    median, largest = g.ratio_quantiles()
    return (
        f"| {name} | {g.compared} | {g.outside1} | {_share(g.outside1, g.compared)} "
        f"| {_share_bound(g.outside1, g.compared)} | {g.outside2} "
        f"| {_share(g.outside2, g.compared)} | {_share_bound(g.outside2, g.compared)} "
        f"| {_number(median)} | {_number(largest)} "
        f"| {_share(g.unresolved, g.checked)} | {_share(g.excluded, g.checked)} "
        f"| {g.kinks} ({g.kinks_outside1}) |"
    )


def _share_bound(part: int, whole: int) -> str:
    return f"{_upper95(part, whole):.2e}" if whole else "–"


def _table(tally: Tally, kind: str, what: str) -> list[str]:
    header = HEADER.format(what=what)
    lines = [header, "|---" + "|---:" * (header.count("|") - 2) + "|"]
    lines += [_row(label, tally.groups[kind, label]) for label in tally.labels(kind)]
    lines.append(_row("**all**", tally.groups["all", "all"]))
    return lines


def _coarse_line(tally: Tally) -> str:
    everything = tally.groups["all", "all"]
    return (
        f"The truth's own error (its rounding, measured against the same computation one "
        f"precision lower) was more than a tenth of the bar for {everything.coarse} of "
        f"{everything.compared} compared elements; an element counts as outside only "
        f"beyond bar + that error."
    )


def _cases_table(tally: Tally) -> list[str]:
    lines = [
        "| family | cases | truth computed in (cases) | skipped (cases) | verdicts "
        "| truth coarser than bar/10 (elements) |",
        "|---|---:|---|---|---|---:|",
    ]
    for family in sorted(tally.cases):
        truths = (
            ", ".join(f"{k[1]}: {n}" for k, n in sorted(tally.truths.items()) if k[0] == family)
            or "–"
        )
        skipped = (
            ", ".join(f"{k[1]}: {n}" for k, n in sorted(tally.skipped.items()) if k[0] == family)
            or "–"
        )
        verdicts = (
            ", ".join(f"{k[1]}: {n}" for k, n in sorted(tally.verdicts.items()) if k[0] == family)
            or "–"
        )
        coarse = tally.groups["family", family].coarse
        lines.append(
            f"| {family} | {tally.cases[family]} | {truths} | {skipped} | {verdicts} | {coarse} |"
        )
    return lines


def _worst_table(tally: Tally) -> list[str]:
    worst = tally.worst_first()
    if not worst:
        return ["No element outside its error bar."]
    lines = [
        "| family:seed | dtype | variable | index | status | numerical | truth | analytic "
        "| bar | truth's own error | err/bar | engine | method |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for w in worst:
        lines.append(
            f"| {w.family}:{w.seed} | {w.dtype} | {w.variable} | {w.index} | {w.status} "
            f"| {w.numerical:.10g} | {w.truth:.10g} | {w.analytic:.10g} | {w.bar:.2e} "
            f"| {w.uncertainty:.1e} | {w.ratio:.3g} | {w.engine} | {w.method} |"
        )
    return lines


def report(tally: Tally, seconds: float, args: argparse.Namespace, chosen: list[str]) -> str:
    """The Markdown the benchmark prints."""
    total = sum(tally.cases.values())
    truth = describe_dtype(TRUTH_DTYPE)
    lines = [
        f"{total} correct cases ({args.cases} per family, seeds {args.start}.."
        f"{args.start + args.cases - 1}, mode={args.mode}) of {len(chosen)} families in "
        f"{seconds:.0f} s; truth in {truth}"
        + (
            ""
            if EXTENDED
            else " — WARNING: no extended precision on this machine, the truth rounds like float64"
        ),
        "",
        "*compared*: elements the check differentiated numerically (a finite value and "
        "error bar, status not unchecked) and did not skip as kinks. *outside 1·bar*: "
        "|numerical − true| > error bar + the truth's own error, the promise (target: "
        "under 1e-4 in every family); *outside 2·bar*: broken by more than a factor of "
        "two. *err/bar*: |numerical − true| / error bar. *unresolved*, "
        "*excluded* (seen through fast mode's directions only, no numerical value): shares "
        "of the elements checked. *kinks*: elements skipped as kinks, never compared (in "
        "brackets: how many lie outside their bar; on a smooth layer every kink is false).",
        "",
        _coarse_line(tally),
        "",
        "Calibration by family:",
        "",
        *_table(tally, "family", "family"),
        "",
        "By family and dtype (the dtype of the case's inputs):",
        "",
        *_table(tally, "family×dtype", "family, dtype"),
        "",
        "By engine (read from each variable's method label; several named: the variable "
        "mixed them):",
        "",
        *_table(tally, "engine", "engine"),
        "",
        "By mode (fast: directions, elements named by group testing; floor: central "
        "differences at one step with sampled error bars):",
        "",
        *_table(tally, "mode", "mode"),
        "",
        "By status of the element (kinks are listed, never compared):",
        "",
        *_table(tally, "status", "status"),
        "",
        "By the precision of the truth:",
        "",
        *_table(tally, "truth", "truth dtype"),
        "",
        "Cases:",
        "",
        *_cases_table(tally),
        "",
        f"Worst elements outside their bar, at most {Tally.KEEP} per family and one per "
        f"variable of a case (reproduce with --show FAMILY:SEED --mode {args.mode}):",
        "",
        *_worst_table(tally),
    ]
    return "\n".join(lines)


def show(source: Source, seed: int, options: dict[str, Any]) -> None:
    """Print one case: gradcheck's report, then every element against the truth."""
    case = draw(source, seed)
    print(f"{source.name}:{seed}  {case}")
    try:
        result = gradcheck.check(case.layer, *case.inputs, seed=seed, **options)
    except gradcheck.CheckError as error:
        print(f"CheckError: {error}")
        return
    print(result)
    try:
        truth = true_gradients(case.layer, case.inputs, seed, source.truth)
        variables = compare_report(result, truth)
    except NoTruthError as error:
        print(f"no truth: {error}")
        return
    print(f"\ntruth: {describe_dtype(truth.dtype)}, by the {truth.via}")
    for var in variables:
        print(f"\n{var.name} {var.shape}: {var.method} (engine {engine_name(var.method)})")
        print(
            f"  {'index':<14} {'status':<10} {'analytic':>22} {'numerical':>22} "
            f"{'truth':>22} {'bar':>9} {'true err':>9} {'err/bar':>8}"
        )
        for flat in range(var.numerical.size):
            status = STATUS_NAMES.get(Status(int(var.status[flat])), "?")
            mark = " <" if var.outside(1.0)[flat] else ""
            print(
                f"  {var.index(flat)!s:<14} {status:<10} {var.analytic[flat]:>22.15g} "
                f"{var.numerical[flat]:>22.15g} {float(var.truth[flat]):>22.15g} "
                f"{var.bar[flat]:>9.2e} {var.true_error[flat]:>9.2e} "
                f"{var.ratio[flat]:>8.3g}{mark}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="cases per family")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--family", help="only these families (comma-separated)")
    parser.add_argument(
        "--mode",
        choices=("auto", "full", "fast"),
        default="auto",
        help="gradcheck's mode (default: its own default, auto)",
    )
    parser.add_argument("--show", metavar="FAMILY:SEED", help="print one case, e.g. outlier:17")
    args = parser.parse_args(argv)
    known = sources()
    options = {"mode": args.mode}
    if args.show:
        family, _, seed = args.show.rpartition(":")
        if family not in known or not seed.isdigit():
            raise SystemExit(f"--show takes FAMILY:SEED with FAMILY one of {', '.join(known)}")
        show(known[family], int(seed), options)
        return 0
    chosen = list(known) if not args.family else args.family.split(",")
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown families {', '.join(unknown)}; known: {', '.join(known)}")
    tally, seconds = run(
        [known[name] for name in chosen], range(args.start, args.start + args.cases), **options
    )
    print(report(tally, seconds, args, chosen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
