"""Command line: ``symkl derive``, ``verify``, ``build``, ``check``, ``export``, ``list``.

The library returns results; this module turns them into output and exit codes.

Exit codes
----------
0
    Success.
1
    A proof or a check failed (the report says which).
2
    A usage or input error: a bad argument, a missing or unwritable file, a
    ``--function`` module that cannot be imported.  One line on stderr,
    ``symkl <command>: error: ...``, never a traceback.
3
    An internal error of symkl (a bug): one line on stderr; set
    ``SYMKL_TRACEBACK=1`` to see the traceback.
141
    The reader of standard output went away (``symkl list | head -1``): the
    command stops quietly, as ``yes | head -1`` does (128 + SIGPIPE).

Conventions shared by every subcommand: ``-o -`` means standard output;
progress is drawn (with ``rich``) on a terminal's stderr only, never with
``--json``; every long command ends with a one-line verdict stating its scope.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import numpy as np

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_USAGE",
    "UsageError",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_PIPE = 141

# --------------------------------------------------------------------------- the general layer


class UsageError(Exception):
    """A user mistake (bad argument, unreadable input): one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors that name the subcommand (``symkl verify: error: ...``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _command(argv: Sequence[str]) -> str:
    """``symkl <subcommand>`` for messages, from the raw arguments."""
    for word in argv:
        if word in _HANDLERS:
            return f"symkl {word}"
    return "symkl"


@contextlib.contextmanager
def output_stream(path: str | None) -> Iterator[TextIO]:
    """Standard output for ``None`` or ``"-"``, else the file ``path`` (UTF-8).

    Raises ``UsageError`` naming the path when it cannot be opened.
    """
    if path in (None, "-"):
        yield sys.stdout
        return
    try:
        stream = open(path, "w", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from error
    with stream:
        yield stream


class Progress:
    """A progress display on a terminal's stderr (``rich``); silent elsewhere.

    ``progress(label, done, total)`` updates the bar of ``label`` (a new label
    starts a new bar); ``progress.stage(label)`` shows a spinner with the
    elapsed time for a step that reports no counts.  Nothing is drawn when
    stderr is not a terminal, with ``--json``, or when ``rich`` is missing.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._progress = None
        self._task = None
        self._label = None
        if not (enabled and sys.stderr.isatty()):
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress
        except ImportError:  # pragma: no cover - rich is a dependency
            return
        self._progress = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()

    @property
    def shown(self) -> bool:
        """True when a display is being drawn."""
        return self._progress is not None

    def __call__(self, label: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        if label != self._label or self._task is None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(label, total=total)
            self._label = label
        self._progress.update(self._task, completed=done, total=total)

    def stage(self, label: str) -> None:
        """A step without counts: a spinner labelled ``label``."""
        self(label, 0, None)

    def close(self) -> None:
        """Remove the display (it is transient: nothing stays on the terminal)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace, name: str) -> int:
    """Run one subcommand and map what it raised onto the documented exit codes."""
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler's scope
        return status
    except BrokenPipeError:
        _quiet_broken_pipe()
        return EXIT_PIPE
    except (UsageError, ValueError) as error:
        # library functions raise ValueError for bad input, naming the argument
        print(f"{name}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        # an unwritable --root, a full disk, a missing file: the user's environment
        where = f"{error.filename}: " if error.filename else ""
        print(f"{name}: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("SYMKL_TRACEBACK"):
            raise
        print(
            f"{name}: internal error: {type(error).__name__}: {_one_line(error)} "
            "(a bug in symkl; rerun with SYMKL_TRACEBACK=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    # the registry's own messages start with the function name ("derive: ..."); the
    # command name replaces it
    for prefix in ("derive: ",):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text


def _format_ulps(value: float) -> str:
    """ULPs for people: ``0.72``, ``3.4e+03``, ``9.2e+18``, ``inf``."""
    if not np.isfinite(value):
        return str(value)
    return f"{value:.2f}" if abs(value) < 1e4 else f"{value:.2g}"


def _verdict(name: str, ok: bool, text: str) -> None:
    """The one-line verdict that ends a long command (on stdout, after the report)."""
    print(f"{name}: {'ok' if ok else 'FAILED'}: {text}")


# --------------------------------------------------------------------------- the parser


def _parser() -> argparse.ArgumentParser:
    from symkl import __version__

    parser = _Parser(
        prog="symkl",
        description="Derive, prove and render KL divergences between Gaussians.",
        epilog="Exit codes: 0 ok, 1 a proof or check failed, 2 usage or input error, "
        "3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"symkl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    derive = commands.add_parser(
        "derive",
        help="print a derivation (LaTeX, Markdown or text) with how each step was proved",
        description="Print a derivation. Each step carries its check note, read from the "
        "verification certificate `symkl build` wrote for exactly these claims; "
        "--verify re-runs the checks instead.",
    )
    derive.add_argument("name", help="derivation name (see `symkl list`)")
    derive.add_argument(
        "--format", choices=("latex", "markdown", "text"), default="text", help="output format"
    )
    derive.add_argument(
        "--verify", action="store_true", help="re-verify every step now, not from the certificate"
    )
    derive.add_argument("-o", "--output", metavar="PATH", help="write to PATH ('-': stdout)")

    verify = commands.add_parser("verify", help="verify a derivation and print the report")
    verify.add_argument("name", nargs="?", help="derivation name (default: all)")
    verify.add_argument("--json", action="store_true", help="machine-readable report")

    build = commands.add_parser(
        "build",
        help="regenerate derivations/, the kernels and the certificates (or --check them)",
    )
    build.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    build.add_argument("--root", default=".", help="symkl checkout to build into (default .)")

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
        help="200 cases per function, about 4 s (full mode: 4,000, about 21 s)",
    )
    check.add_argument("--json", action="store_true", help="machine-readable results")
    check.add_argument("--peers", action="store_true", help="also compare torch.distributions")
    check.add_argument("--seed", type=int, default=0, help="grid seed (default 0)")
    check.add_argument("--cases", type=int, help="cases per function and dtype (at least 4)")
    check.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="check only these: a function (kl_diag), a check (kl_diag[std]) or a prefix (grad_)",
    )
    check.add_argument("--function", metavar="MODULE:FUNCTION", help="check your own KL instead")
    check.add_argument("--family", choices=("normal", "diag", "std-normal"), help="with --function")
    check.add_argument(
        "--param",
        choices=("std", "var", "logvar"),
        help="with --function: what s_p, s_q hold (std-normal: logvar, implied)",
    )
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
    export.add_argument(
        "-o", "--output", required=True, metavar="PATH", help="file to write ('-': stdout)"
    )
    export.add_argument("--force", action="store_true", help="overwrite an existing file")

    commands.add_parser("list", help="list the available derivations")
    return parser


# --------------------------------------------------------------------------- subcommands


def _derive(args: argparse.Namespace) -> int:
    from symkl.build import read_certificate
    from symkl.kl import derive
    from symkl.render import render

    derivation = derive(args.name)
    report: Any
    if args.verify:
        report = derivation.verify()
    else:
        report = read_certificate(derivation)
        if report is None:
            print(
                f"symkl derive: note: no certificate matches the claims of {args.name!r} "
                "(run `symkl build`); verifying now",
                file=sys.stderr,
            )
            with Progress() as progress:
                progress.stage(f"verify {args.name}")
                report = derivation.verify()
    with output_stream(args.output) as stream:
        stream.write(render(derivation, args.format, report))
    return EXIT_OK if report.proved else EXIT_FAILED


def _verify(args: argparse.Namespace) -> int:
    from symkl.kl import available_derivations, derive

    names = [args.name] if args.name else list(available_derivations())
    started = time.perf_counter()
    reports = []
    with Progress(not args.json) as progress:
        for index, name in enumerate(names):
            progress(f"verify {name}", index, len(names))
            reports.append(derive(name).verify())
    if args.json:
        from symkl.proof.lemmas import evidence_refusal, lemma_record

        documents, unbacked = [], []
        for report in reports:  # each lemma used: statement, side conditions, evidence verdict
            document = report.as_dict()
            document["assumed_lemmas"] = [lemma_record(name) for name in report.lemmas]
            # a derivation resting on a lemma whose evidence fails is not verified
            refusal = evidence_refusal(report.lemmas)
            document["lemma_evidence_ok"] = not refusal
            if refusal:
                unbacked.append(report)
                print(f"symkl verify: {report.name}: {refusal}", file=sys.stderr)
            documents.append(document)
        print(json.dumps(documents, indent=2))
        if unbacked:
            return EXIT_FAILED
    else:
        for report in reports:
            print(report)
        _verdict("symkl verify", all(r.proved for r in reports), _verify_scope(reports, started))
    return EXIT_OK if all(report.proved for report in reports) else EXIT_FAILED


def _verify_scope(reports: Sequence[Any], started: float) -> str:
    """``6/6 derivations proved (95 claims: ...)`` from the reports' ``as_dict()``."""
    summaries = [report.as_dict() for report in reports]
    claims = sum(len(summary.get("steps", ())) for summary in summaries)
    proved = sum(1 for report in reports if report.proved)
    failing = [s["name"] for s, r in zip(summaries, reports, strict=True) if not r.proved]
    # claims proved only at listed dimensions say so in their method ("at k = 1, 2, 3")
    bounded = sorted(
        {
            s["name"]
            for s in summaries
            for step in s.get("steps", ())
            if str(step.get("scope") or step.get("symbolic", {}).get("method", "")).startswith(
                "at "
            )
        }
    )
    scope = "each claim proved symbolically and checked numerically"
    lemmas = sorted({name for summary in summaries for name in summary.get("lemmas", ())})
    if lemmas:
        scope += f"; for all k from the assumed lemmas {', '.join(lemmas)}"
    if bounded:
        scope += f"; {', '.join(bounded)}: some claims at listed dimensions only"
    text = (
        f"{proved}/{len(reports)} derivations proved ({claims} claims; {scope}) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    if failing:
        text += f"; not proved: {', '.join(failing)}"
    return text


def _build(args: argparse.Namespace) -> int:
    from symkl.build import build

    started = time.perf_counter()
    with Progress() as progress:
        result = build(args.root, check=args.check, progress=progress)
    for name, timing in result.timings.items():
        if name not in result.reports:
            print(f"{name:12s} {'':10s} generated in {sum(timing.values()):.2f} s")
            continue
        state = "proved" if result.reports[name].proved else "NOT PROVED"
        print(
            f"{name:12s} {state:10s} derive {timing['derive']:6.2f} s  "
            f"verify {timing['verify']:6.2f} s  render {timing['render']:5.2f} s"
        )
    for name, report in result.reports.items():
        for failure in report.failures:
            print(
                f"symkl build: {name}: step {failure.label!r} failed: {failure.summary()}",
                file=sys.stderr,
            )
    seconds = time.perf_counter() - started
    derivations = f"{len(result.reports)} derivations"
    if not result.proved:
        _verdict("symkl build", False, f"not every one of {derivations} verified; nothing written")
        return EXIT_FAILED
    if args.check:
        for path in result.stale:
            print(f"symkl build: {path} is stale or missing; run `symkl build`", file=sys.stderr)
        _verdict(
            "symkl build --check",
            not result.stale,
            f"{len(result.files) - len(result.stale)}/{len(result.files)} generated files "
            f"up to date under {args.root} ({derivations} proved, {seconds:.1f} s)",
        )
        return EXIT_FAILED if result.stale else EXIT_OK
    for path in result.written:
        print(f"wrote {path}")
    _verdict(
        "symkl build",
        True,
        f"{len(result.files)} files generated under {args.root}, {len(result.written)} changed "
        f"({derivations} proved, {seconds:.1f} s)",
    )
    return EXIT_OK


def _inputs(inputs: dict) -> str:
    def short(value: object) -> str:
        if isinstance(value, list):
            flat = np.ravel(np.asarray(value, dtype=float))
            text = ", ".join(f"{v:.6g}" for v in flat[:3])
            return f"[{text}{', ...' if flat.size > 3 else ''}]"
        return f"{value:.17g}" if isinstance(value, float) else str(value)

    return " ".join(f"{name}={short(value)}" for name, value in inputs.items())


def _worst(result: Any) -> str:
    return f"{result.worst:.3g}" if result.metric == "rel" else _format_ulps(result.worst)


def _failing_cases(result: Any) -> int:
    """How many cases exceed the bound (all of them when the function raised)."""
    errors = getattr(result, "errors", None) or []
    if result.error or not errors:
        return result.cases
    return sum(1 for error in errors if not error <= result.bound)  # NaN counts as failing


def _failure_report(result: Any) -> str:
    """``FAIL name [dtype]: 37 of 200 cases exceed 4 ULP; worst 9.2e+18 ULP: got != ref at ...``."""
    if result.error:
        return f"FAIL {result.name} [{result.dtype}]: raised {result.error}"
    unit = "ULP" if result.metric == "ulp" else "relative error"
    return (
        f"FAIL {result.name} [{result.dtype}]: {_failing_cases(result)} of {result.cases} cases "
        f"exceed {result.bound:g} {unit}; worst {_worst(result)} {unit}: "
        f"{result.got!r} != {result.truth!r} at {_inputs(result.worst_inputs)}"
    )


def _table(results) -> str:
    header = (
        f"{'function':28s} {'dtype':8s} {'cases':>6s} {'failing':>7s} {'worst':>11s} "
        f"{'bound':>8s}  verdict  worst case"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        unit = "ULP" if r.metric == "ulp" else "rel"
        detail = r.error or _inputs(r.worst_inputs)
        failing = _failing_cases(r) if not r.passed else 0
        lines.append(
            f"{r.name:28s} {r.dtype:8s} {r.cases:6d} {failing:7d} {_worst(r):>7s} {unit:3s} "
            f"{r.bound:8.3g}  {r.verdict:7s}  {detail}"
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


def select_checks(requested: Sequence[str] | None, known: Sequence[str]) -> list[str] | None:
    """Resolve ``--only`` words to check names, in registry order.

    A word selects the check of that exact name (``kl_diag[std]``), else every
    check of that function (``kl_diag`` selects ``kl_diag[std]``,
    ``kl_diag[var]``, ``kl_diag[logvar]``, not ``kl_diag_reverse[...]``), else
    every check whose name starts with it (``grad_``).

    Examples
    --------
    >>> select_checks(["kl_diag"], ["kl_normal", "kl_diag[std]", "kl_diag_reverse[std]"])
    ['kl_diag[std]']
    >>> select_checks(["kl_"], ["kl_normal", "grad_kl_normal"])
    ['kl_normal']
    """
    if requested is None:
        return None
    chosen: set[str] = set()
    unknown = []
    for word in requested:
        exact = [name for name in known if name == word]
        function = [name for name in known if name.partition("[")[0] == word]
        prefix = [name for name in known if name.startswith(word)]
        matches = exact or function or prefix
        if not matches:
            unknown.append(word)
        chosen.update(matches)
    if unknown:
        functions = sorted({name.partition("[")[0] for name in known})
        raise UsageError(
            f"--only: unknown check(s) {unknown}; give a function ({', '.join(functions)}), "
            "a check such as kl_diag[std], or a prefix such as grad_"
        )
    return [name for name in known if name in chosen]


def _guarded(function: Callable[..., Any], spec: str) -> Callable[..., Any]:
    """``function`` with ``sys.exit`` turned into an error of that function (not of symkl)."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SystemExit as exit_:
            raise RuntimeError(f"{spec} called sys.exit({exit_.code!r})") from None

    return call


def _function_spec(spec: str) -> tuple[str, str]:
    """``(module, attribute)`` of ``"package.module:function"``, or a UsageError."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise UsageError(f"--function must look like 'package.module:function', got {spec!r}")
    return module_name, attribute


def load_user_function(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` without putting the current directory on ``sys.path``.

    The module's top-level package is looked up in the current directory first
    (loaded from there by its own spec, so its imports of *other* modules, such
    as ``torch``, still resolve to the installed ones), then on ``sys.path``.
    Raises ``UsageError`` saying what was wrong; an error raised while importing
    the module (a ``SyntaxError``, an exception, ``sys.exit``) is reported in one
    line with its file and line.
    """
    module_name, attribute = _function_spec(spec)
    top = module_name.partition(".")[0]
    try:
        if top not in sys.modules:
            found = importlib.machinery.PathFinder.find_spec(top, [os.getcwd()])
            if found is not None and found.loader is not None:
                module = importlib.util.module_from_spec(found)
                sys.modules[top] = module
                try:
                    found.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(top, None)
                    raise
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except ModuleNotFoundError as error:
        raise UsageError(
            f"--function {spec!r}: cannot import module {module_name!r}: no module named "
            f"{error.name!r} (in the current directory or installed)"
        ) from None
    except SyntaxError as error:
        raise UsageError(
            f"--function {spec!r}: syntax error in {error.filename}, line {error.lineno}: "
            f"{error.msg}"
        ) from None
    except SystemExit as error:
        raise UsageError(
            f"--function {spec!r}: importing {module_name!r} called sys.exit({error.code!r})"
        ) from None
    except BaseException as error:
        where = ""
        trace = error.__traceback__
        while trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
        if trace is not None:
            where = f" ({trace.tb_frame.f_code.co_filename}, line {trace.tb_lineno})"
        raise UsageError(
            f"--function {spec!r}: importing {module_name!r} raised "
            f"{type(error).__name__}: {_one_line(error)}{where}"
        ) from None
    function: Any = module
    for part in attribute.split("."):
        if not hasattr(function, part):
            raise UsageError(
                f"--function {spec!r}: module {module_name!r} has no attribute {attribute!r}"
            )
        function = getattr(function, part)
    if not callable(function):
        raise UsageError(f"--function {spec!r} is not callable (it is a {type(function).__name__})")
    return _guarded(function, spec)


def _check_settings(args: argparse.Namespace) -> int:
    """Validate ``check``'s numbers and imply what can be implied; returns the case count."""
    cases = args.cases if args.cases is not None else (200 if args.quick else 4000)
    if cases < 4:
        raise UsageError(f"--cases must be at least 4, got {cases}")
    if args.function:
        _function_spec(args.function)
        if args.family == "std-normal":
            if args.param not in (None, "logvar"):
                raise UsageError(
                    f"--family std-normal takes (mu, logvar): --param must be logvar, "
                    f"got {args.param}"
                )
            args.param = "logvar"
        if not args.family or not args.param:
            raise UsageError(
                "--function needs --family and --param (normal or diag: std, var or logvar, "
                "what s_p, s_q hold; std-normal implies logvar)"
            )
        if args.family != "normal" and args.k < 1:
            raise UsageError(f"--k must be at least 1 (the dimension), got {args.k}")
        if not (args.ulps > 0 and np.isfinite(args.ulps)):
            raise UsageError(f"--ulps must be a positive number, got {args.ulps}")
    elif args.family or args.param or args.framework != "numpy":
        raise UsageError("--family, --param and --framework go with --function")
    if args.function and args.only:
        raise UsageError("--only selects symkl's own functions; it does not go with --function")
    return cases


def _check(args: argparse.Namespace) -> int:
    from symkl import check

    cases = _check_settings(args)
    quadrature, mpmath_cases = (2, 1) if args.quick else (8, 1)
    started = time.perf_counter()
    with Progress(not args.json) as progress:
        if args.function:
            function = load_user_function(args.function)
            convert = check.array_converter(args.framework, enable_x64="float64" in args.dtype)
            spec = check.user_check(
                function, args.family, args.param, args.ulps, k=args.k, convert=convert
            )
            spec = dataclasses.replace(
                spec, reference=f"{spec.reference}; inputs: {args.framework}"
            )
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
            results = check.run_checks(
                select_checks(args.only, list(check.CHECKS)),
                cases=cases,
                seed=args.seed,
                quadrature_cases=quadrature,
                mpmath_cases=mpmath_cases,
                progress=progress,
            )
        peers = []
        if args.peers:
            progress.stage("torch.distributions peers")
            try:
                peers = check.run_peers(cases=min(cases, 1000), seed=args.seed)
            except ImportError:
                print(
                    "symkl check: --peers needs torch (pip install torch==2.13.0); skipped",
                    file=sys.stderr,
                )
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
        for r in failed:
            print(_failure_report(r), file=sys.stderr)
        dtypes = sorted({r.dtype for r in results})
        if args.function:
            scope = f"your {args.function} ({args.family}, {args.param})"
        elif args.only:
            scope = f"the selected checks ({', '.join(sorted({r.name for r in results}))})"
        else:
            scope = "every public numeric function"
        print()
        _verdict(
            "symkl check",
            passed,
            f"{len(results) - len(failed)}/{len(results)} within their documented bounds: "
            f"{scope}; {sum(r.cases for r in results)} cases, {', '.join(dtypes)}, seed "
            f"{args.seed}, {'quick' if args.quick else 'full'} mode, "
            f"{time.perf_counter() - started:.1f} s",
        )
    return EXIT_OK if passed else EXIT_FAILED


def _export(args: argparse.Namespace) -> int:
    from symkl.export import export_source, write_export

    if args.output == "-":
        sys.stdout.write(export_source(args.target))
        return EXIT_OK
    try:
        path = write_export(args.target, args.output, force=args.force)
    except OSError as error:  # FileExistsError, a missing directory, no permission
        raise UsageError(str(error)) from error
    print(f"wrote {path} ({args.target})")
    return EXIT_OK


def _list(_: argparse.Namespace) -> int:
    from symkl.kl import available_derivations

    for name in available_derivations():
        print(name)
    return EXIT_OK


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "derive": _derive,
    "verify": _verify,
    "build": _build,
    "check": _check,
    "export": _export,
    "list": _list,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = _command(argv)
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    return _run(_HANDLERS[args.command], args, f"symkl {args.command}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
