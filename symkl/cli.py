"""Command line: ``symkl derive``, ``symkl verify``, ``symkl build``, ``symkl list``.

The library returns results; this module turns them into output and exit codes
(0 success, 1 a proof or check failed, 2 usage error).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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


def _list(_: argparse.Namespace) -> int:
    from symkl.kl import available_derivations

    for name in available_derivations():
        print(name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {"derive": _derive, "verify": _verify, "build": _build, "list": _list}
    try:
        return handlers[args.command](args)
    except ValueError as error:
        print(f"symkl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
