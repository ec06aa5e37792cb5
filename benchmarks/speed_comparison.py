"""Numerical gradient vs backprop on the chapter's two-layer net, as a RESULTS.md section.

The measuring is :mod:`gradcheck.teaching.speed` and the table is ``gradcheck speed``'s own; this
script only wraps them in Markdown (the command, the table, the machine) so that the
section in ``benchmarks/RESULTS.md`` can be regenerated::

    python benchmarks/speed_comparison.py --quick          # ~10 s, sampled + extrapolated
    python benchmarks/speed_comparison.py                  # everything measured (minutes)
    python benchmarks/speed_comparison.py --quick --plot docs/speed.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradcheck.faces.cli.speed_plot import write_speed_plot
from gradcheck.faces.cli.speed_text import speed_table
from gradcheck.teaching import speed


def section(comparison: speed.SpeedComparison, command: str) -> str:
    """The Markdown section for ``benchmarks/RESULTS.md``."""
    textbook = next((r for r in comparison.results if r.is_textbook_size), None)
    lines = ["## Numerical vs backprop (gradcheck speed)", "", f"Command: `{command}`", ""]
    lines += ["```text", speed_table(comparison), "```", ""]
    if textbook is not None and textbook.ratio is not None:
        lines.append(
            f"- At the textbook size (784 -> 50 -> 10, batch 100, {textbook.parameters:,} "
            f"parameters) one numerical gradient by the textbook loop costs about "
            f"{textbook.ratio:,.0f} backprop gradients."
        )
    lines += [
        "- Numerical cost grows as n² (n forward passes, each costing ∝ n); backprop as n.",
        "- `|Δ|` is accuracy beside speed: the textbook's fixed h = 1e-4 straddles a ReLU "
        "kink now and then (|Δ| ~1e-5 wherever a compared element sits near one); gradcheck's "
        "engine scales its step to each element and stays near 1e-10.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure and print the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sample and extrapolate")
    parser.add_argument("--plot", type=Path, help="also write the log-log plot (PNG)")
    args = parser.parse_args(argv)
    comparison = speed.compare_speed(
        speed.SpeedConfig(quick=args.quick),
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    command = "gradcheck speed" + (" --quick" if args.quick else "")
    print(section(comparison, command))
    if args.plot is not None:
        write_speed_plot(comparison, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
