"""Command line: ``symkl derive``, ``verify``, ``build``, ``check``, ``export``, ``list``.

The library returns results; this module turns them into output and exit codes
(0 success, 1 a proof or check failed, 2 usage error).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from symkl import __version__

    parser = argparse.ArgumentParser(
        prog="symkl",
        description="Derive, prove and render KL divergences between Gaussians.",
    )
    parser.add_argument("--version", action="version", version=f"symkl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    derive = commands.add_parser("derive", help="print a derivation (LaTeX, Markdown or text)")
    derive.add_argument("name", help="derivation name (see `symkl list`)")
    derive.add_argument(
        "--format", choices=("latex", "markdown", "text"), default="text", help="output format"
    )
    derive.add_argument(
        "--verify", action="store_true", help="verify every step and show how each was checked"
    )

    verify = commands.add_parser("verify", help="verify a derivation and print the report")
    verify.add_argument("name", nargs="?", help="derivation name (default: all)")
    verify.add_argument("--json", action="store_true", help="machine-readable report")

    build = commands.add_parser("build", help="regenerate derivations/ (or --check it)")
    build.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    build.add_argument("--root", default=".", help="project root holding derivations/")

    check = commands.add_parser(
        "check",
        help="cross-check the numeric functions (or yours) against certified references",
        description="Measure every public numeric function against a certified 50-digit "
        "reference (the derived closed form in ball arithmetic, cross-checked against "
        "quadrature of the definition) on a seeded grid over the documented domain; "
        "exit 1 when any exceeds its documented bound.",
    )
    check.add_argument(
        "--quick",
        action="store_true",
        help="200 cases per function, about 4 s (full mode: 4,000, 15-35 s)",
    )
    check.add_argument("--json", action="store_true", help="machine-readable results")
    check.add_argument("--peers", action="store_true", help="also compare torch.distributions")
    check.add_argument("--seed", type=int, default=0, help="grid seed (default 0)")
    check.add_argument("--cases", type=int, help="cases per function and dtype")
    check.add_argument("--only", nargs="+", metavar="NAME", help="check only these functions")
    check.add_argument("--function", metavar="MODULE:FUNCTION", help="check your own KL instead")
    check.add_argument("--family", choices=("normal", "diag", "std-normal"), help="with --function")
    check.add_argument("--param", choices=("std", "var", "logvar"), help="with --function")
    check.add_argument("--ulps", type=float, default=4.0, help="bound for --function (default 4)")
    check.add_argument(
        "--framework",
        choices=("numpy", "torch", "jax"),
        default="numpy",
        help="with --function: feed it arrays of this framework (default numpy)",
    )
    check.add_argument("--k", type=int, default=8, help="dimension for diag/std-normal (default 8)")
    check.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        nargs="+",
        default=["float64"],
        help="dtypes for --function (default float64)",
    )

    export = commands.add_parser(
        "export",
        help="write a standalone KL module for numpy, torch, jax or c",
        description="Write the proved stable KL forms (univariate, diagonal in each "
        "parameterisation, VAE prior, and their gradients) as a standalone file that "
        "depends only on its framework.",
    )
    export.add_argument("--target", required=True, help="numpy, torch, jax or c")
    export.add_argument("-o", "--output", required=True, metavar="PATH", help="file to write")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")

    commands.add_parser("list", help="list the available derivations")
    return parser


def _derive(args: argparse.Namespace) -> int:
    from symkl.kl import derive
    from symkl.render import render

    derivation = derive(args.name)
    report = derivation.verify() if args.verify else None
    sys.stdout.write(render(derivation, args.format, report))
    return 0 if report is None or report.proved else 1


def _verify(args: argparse.Namespace) -> int:
    from symkl.kl import available_derivations, derive

    names = [args.name] if args.name else list(available_derivations())
    reports = [derive(name).verify() for name in names]
    if args.json:
        print(json.dumps([report.as_dict() for report in reports], indent=2))
    else:
        for report in reports:
            print(report)
    return 0 if all(report.proved for report in reports) else 1


def _build(args: argparse.Namespace) -> int:
    from symkl.build import build

    result = build(args.root, check=args.check)
    for name, timing in result.timings.items():
        if name not in result.reports:
            print(f"{name:12s} {'':10s} generated kernels in {sum(timing.values()):.2f} s")
            continue
        state = "proved" if result.reports[name].proved else "NOT PROVED"
        print(
            f"{name:12s} {state:10s} derive {timing['derive']:6.2f} s  "
            f"verify {timing['verify']:6.2f} s  render {timing['render']:5.2f} s"
        )
    for name, report in result.reports.items():
        for failure in report.failures:
            print(
                f"error: {name}: step {failure.label!r} failed: {failure.summary()}",
                file=sys.stderr,
            )
    if not result.proved:
        print("error: not every derivation verified; nothing written", file=sys.stderr)
        return 1
    if args.check:
        for path in result.stale:
            print(f"error: {path} is stale or missing; run `symkl build`", file=sys.stderr)
        if result.stale:
            return 1
        print(f"ok: {len(result.files)} generated files are up to date")
        return 0
    for path in result.written:
        print(f"wrote {path}")
    print(f"{len(result.files)} files generated, {len(result.written)} changed")
    return 0


class _Progress:
    """A one-line progress bar on a terminal's stderr, shown once a run passes a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.perf_counter()
        self.shown = False

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled or time.perf_counter() - self.started < 1.0:
            return
        if done != total and done % max(total // 50, 1):
            return
        filled = int(30 * done / total)
        sys.stderr.write(f"\r{label[:34]:34s} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 80 + "\r")
            sys.stderr.flush()


def _inputs(inputs: dict) -> str:
    def short(value: object) -> str:
        if isinstance(value, list):
            flat = np.ravel(np.asarray(value, dtype=float))
            text = ", ".join(f"{v:.6g}" for v in flat[:3])
            return f"[{text}{', ...' if flat.size > 3 else ''}]"
        return f"{value:.17g}" if isinstance(value, float) else str(value)

    return " ".join(f"{name}={short(value)}" for name, value in inputs.items())


def _table(results) -> str:
    header = (
        f"{'function':28s} {'dtype':8s} {'cases':>6s} {'worst':>10s} {'bound':>8s}  "
        "verdict  worst case"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        unit = "ULP" if r.metric == "ulp" else "rel"
        worst = f"{r.worst:.3g}" if r.metric == "rel" else f"{r.worst:.2f}"
        detail = r.error or _inputs(r.worst_inputs)
        lines.append(
            f"{r.name:28s} {r.dtype:8s} {r.cases:6d} {worst:>6s} {unit:3s} {r.bound:8.3g}  "
            f"{r.verdict:7s}  {detail}"
        )
    return "\n".join(lines)


def _peer_table(results) -> str:
    header = (
        f"{'distribution':22s} {'dtype':8s} {'cases':>5s} {'symkl worst':>12s} "
        f"{'torch worst':>12s} {'torch median':>12s} {'torch near 0 (rel)':>19s}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        unit = " ULP" if r.metric == "ulp" else ""
        near = f"{r.peer_near_zero:.3g} ({r.near_zero_cases})" if r.near_zero_cases else "n/a"
        lines.append(
            f"{r.distribution:22s} {r.dtype:8s} {r.cases:5d} {r.symkl_worst:8.3g}{unit:4s} "
            f"{r.peer_worst:8.3g}{unit:4s} {r.peer_median:8.3g}{unit:4s} {near:>19s}"
        )
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    from symkl import check

    cases = args.cases or (200 if args.quick else 4000)
    if cases < 4:
        raise ValueError(f"--cases must be at least 4, got {cases}")
    quadrature, mpmath_cases = (2, 1) if args.quick else (8, 1)
    progress = _Progress(not args.json)
    started = time.perf_counter()
    if args.function:
        function = check.load_function(args.function)
        if not args.family or not args.param:
            raise ValueError("--function needs --family and --param (what s_p, s_q hold)")
        convert = check.array_converter(args.framework, enable_x64="float64" in args.dtype)
        spec = check.user_check(
            function, args.family, args.param, args.ulps, k=args.k, convert=convert
        )
        spec = dataclasses.replace(spec, reference=f"{spec.reference}; inputs: {args.framework}")
        results = [
            check.run_check(
                spec,
                dtype,
                cases=cases,
                seed=args.seed,
                progress=lambda d, t, dtype=dtype: progress(f"{spec.name} {dtype}", d, t),
            )
            for dtype in args.dtype
        ]
    else:
        if args.family or args.param or args.framework != "numpy":
            raise ValueError("--family, --param and --framework go with --function")
        results = check.run_checks(
            args.only,
            cases=cases,
            seed=args.seed,
            quadrature_cases=quadrature,
            mpmath_cases=mpmath_cases,
            progress=progress,
        )
    peers = []
    if args.peers:
        try:
            peers = check.run_peers(cases=min(cases, 1000), seed=args.seed)
        except ImportError:
            print(
                "symkl: --peers needs torch (pip install torch==2.13.0); skipped", file=sys.stderr
            )
    progress.clear()
    passed = all(r.passed for r in results)
    if args.json:
        document = {"passed": passed, "results": [r.as_dict() for r in results]}
        if args.peers:
            document["peers"] = [p.as_dict() for p in peers]
        print(json.dumps(document, indent=2, default=str))
    else:
        print(_table(results))
        if peers:
            print()
            print("torch.distributions.kl_divergence on the same cases (errors against mpmath):")
            print(_peer_table(peers))
        failed = [r for r in results if not r.passed]
        seconds = time.perf_counter() - started
        summary = f"{len(results) - len(failed)}/{len(results)} within their documented bounds"
        print(f"\n{summary} ({sum(r.cases for r in results)} cases, {seconds:.1f} s)")
        for r in failed:
            print(f"FAIL {r.message()}", file=sys.stderr)
    return 0 if passed else 1


def _export(args: argparse.Namespace) -> int:
    from symkl.export import write_export

    try:
        path = write_export(args.target, args.output, force=args.force)
    except (FileExistsError, OSError) as error:
        raise ValueError(str(error)) from error
    print(f"wrote {path} ({args.target})")
    return 0


def _list(_: argparse.Namespace) -> int:
    from symkl.kl import available_derivations

    for name in available_derivations():
        print(name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {
        "derive": _derive,
        "verify": _verify,
        "build": _build,
        "check": _check,
        "export": _export,
        "list": _list,
    }
    try:
        return handlers[args.command](args)
    except ValueError as error:
        print(f"symkl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
