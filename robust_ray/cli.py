"""The ``robust-ray`` command: run, search, validate, analyze.

User errors (bad spec, missing data, bad flags) print one message and exit with code 2,
before anything is written.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .errors import UserError


def _attack_costs(spec) -> None:
    """A warning for each white-box suite that may cost a trial more than its training."""
    from .data import DATASETS
    from .suites import suite_def
    from .whitebox import cost_note

    info = DATASETS.get(spec.dataset.name)
    for key, ss in spec.suites.items():
        if suite_def(spec.suite_type(key)).whitebox is not None:
            note = cost_note(key, ss.options, info.n_test, info.n_train, spec.training.max_epochs, info.num_classes)
            if note is not None:
                print(f"  warning: {note}")


def _validate(args) -> int:
    from .config import load_spec

    spec = load_spec(
        args.spec, smoke=args.smoke_test, sets=args.set or ()
    )  # a missing or bad file answers before torch loads
    from .plan import make_plan

    variant = " (smoke-test variant)" if args.smoke_test else ""
    if spec.search is not None:
        from .search.run import describe

        print(f"{args.spec}: valid search {spec.name!r} on {spec.dataset.name}{variant}")
        print(describe(spec))
        if spec.design is None:
            _attack_costs(spec)
            return 0
    plan = make_plan(spec)
    sizes = plan.nbytes(spec)
    print(f"{args.spec}: valid sweep {spec.name!r} on {spec.dataset.name}{variant}")
    rows = len(plan.trials) // (len(spec.architectures) * len(spec.recipe_list()) * len(spec.seeds))
    print(
        f"  design {spec.design.type}: {len(plan.trials)} trials = {rows} training sets x "
        f"{len(spec.architectures)} architecture(s) x {len(spec.recipe_list())} recipe(s) x {len(spec.seeds)} seed(s)"
    )
    if spec.design.type == "orthogonal":
        from .designs import orthogonal_fallback

        if (why := orthogonal_fallback([len(f.levels) for f in spec.design.factors.values()])) is not None:
            print(f"  {why}")
    print(f"  resources per trial: {spec.resources.cpu:g} CPU, {spec.resources.gpu:g} GPU")
    from .fused import fuse_groups

    if len(grid := fuse_groups([t.to_dict() for t in plan.trials], spec)) < len(plan.trials):
        print(
            f"  execution.fuse {spec.execution.fuse}: {len(plan.trials)} trials run as {len(grid)} Tune trials "
            f"({sum('fused' in g for g in grid)} fused groups; a group takes one trial's resources)"
        )
    print(f"  {len(plan.datasets)} datasets, {sum(sizes.values()) / 2**20:.1f} MiB in the object store:")
    for digest, key in plan.datasets.items():
        desc = key.describe(plan.datasets)
        print(f"    {plan.where[digest]:<40} {key.kind:<5} {desc}  {sizes[digest] / 2**20:.1f} MiB")
    from .suite_table import describe_suite
    from .suites import suite_def

    print("  suites:")
    for key, ss in spec.suites.items():
        sdef = suite_def(spec.suite_type(key))
        when = "in each trial" if sdef.whitebox is not None else "built once"
        print(f"    suites.{key:<34} {when}: {describe_suite(sdef, ss)}")
    _attack_costs(spec)
    from .plan import memory_note

    if (note := memory_note(spec, plan)) is not None:
        print(f"  warning: {note}; `run` refuses this on one machine unless --no-resource-check")
    if args.output:
        from .extend import plan_extension, read_previous
        from .storage import Storage

        trials = read_previous(Storage(args.output, what="results"), spec, args.spec)[1]
        print(f"  run --output {args.output} --extend would do:")
        print("  " + plan_extension(spec, plan, trials).summary().replace("\n", "\n  "))
    return 0


def _starting(args, command: str) -> None:
    """The first line, before torch and Ray are imported (~5 s on a cold start): a user sees
    at once that the command runs (issue 19: first output within 1.5 s)."""
    print(f"robust-ray {command} {args.spec}: checking the spec, starting torch and Ray ...", flush=True)


def _run(args) -> int:
    _starting(args, "run")
    from .config import load_spec
    from .runtime import Execution
    from .sweep import run_sweep

    spec = load_spec(args.spec, smoke=args.smoke_test, sets=args.set or ())
    return _execute(args, "run", lambda signals: run_sweep(spec, Execution.from_args(args, signals)))


def _search(args) -> int:
    _starting(args, "search")
    from .config import load_spec
    from .runtime import Execution
    from .search.run import run_search

    spec = load_spec(args.spec, smoke=args.smoke_test, sets=args.set or ())
    return _execute(args, "search", lambda signals: run_search(spec, Execution.from_args(args, signals)))


def resume_command(args, command: str, output: str) -> str:
    """The line that continues this run, with the flags it was started with."""
    flags = [f"--output {output}", "--extend" if getattr(args, "extend", False) else "--resume"]
    flags += [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in ("address", "data_root", "num_cpus")
              if getattr(args, k) is not None]  # fmt: skip
    flags += ["--smoke-test"] * args.smoke_test + ["--no-resource-check"] * args.no_resource_check
    flags += [f"--set {shlex.quote(item)}" for item in args.set or ()]  # the same effective spec, or resume refuses
    return f"robust-ray {command} {args.spec} " + " ".join(flags)


def _execute(args, command: str, go) -> int:
    """Run or search, under the exit-code contract: 0 all trials finished (ok or diverged),
    1 some failed (after writing everything), 130 on Ctrl-C and 143 on SIGTERM (finished
    trials kept, the rest ``interrupted``), 2 for a user error before anything ran."""
    from .errors import RunAborted
    from .interrupt import Interrupted, Signals

    signals = Signals().install()
    try:
        out = go(signals)
    except Interrupted as e:
        print(f"robust-ray: {e} before any trial ran: stopped, nothing written", file=sys.stderr)
        return e.code
    except RunAborted as e:
        print(f"robust-ray: {e}\nThe trials finished before it are in {e.output}/trials.parquet "
              f"(the others pending or running). To continue:", file=sys.stderr)  # fmt: skip
        print(resume_command(args, command, e.output))
        return 1
    finally:
        signals.restore()
    if signals.code is not None:
        print(f"robust-ray: interrupted; finished trials are kept in {out}. To continue:", file=sys.stderr)
        print(resume_command(args, command, out))
        return signals.code
    import pyarrow.parquet as pq

    from .results import read_pair

    status = pq.read_table(read_pair(out)[0], columns=["status"]).column("status").to_pylist()
    if (failed := status.count("failed")) > 0:
        print(f"robust-ray: {failed} of {len(status)} trials failed (their errors are in the error column "
              f"of trials.parquet); rerun them with: {resume_command(args, command, out)}", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _evaluate(args) -> int:
    from .reevaluate import evaluate_folder

    added = evaluate_folder(args.results, args.suite or [], args.suites, args.data_root, address=args.address,
                            num_cpus=args.num_cpus)  # fmt: skip
    print(f"evaluate: {added} new rows in {args.results}/metrics.parquet; next: robust-ray analyze {args.results}")
    return 0


def _analyze(args) -> int:
    if args.summary:
        from .reproductions import write_summary

        print(f"summary: {write_summary(args.results)}")
        return 0
    from .analysis.reference import format_comparison, read_comparison
    from .analysis.report import analyze

    out = analyze(args.results, args.output, args.recipe, plots=not args.no_plots)
    for path in sorted((out / "tables").glob("*__reference.csv")):  # one per recipe with a reference
        print(format_comparison(read_comparison(path), f"Published vs reproduced ({path.name}):") + "\n")
    print(f"report: {out / 'report.html'} (also report.md, tables/*.csv, plots/*.png)")
    return 0


def _execution_args(p: argparse.ArgumentParser, output_help: str, what: str) -> None:
    """The options ``run`` and ``search`` share: where to write, which Ray, which data."""
    p.add_argument("--output", help=output_help)
    p.add_argument("--address", help="Ray cluster to join, e.g. auto or ray://head:10001")
    p.add_argument("--resume", action="store_true", help=f"continue an interrupted {what} in --output")
    p.add_argument("--data-root", help="folder holding the datasets (else spec, $ROBUST_RAY_DATA)")
    p.add_argument("--num-cpus", type=int, help="CPUs for a local Ray (default: all)")
    p.add_argument("--no-resource-check", action="store_true", help="do not refuse requests no current node can meet")
    _smoke_flag(p)


def _smoke_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--smoke-test",
        action="store_true",
        help="the spec's small variant: its 'smoke:' section merged over it (name gets -smoke)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a spec key, the value read as YAML: --set training.max_epochs=2 --set seeds=[0,1] "
        "(repeatable; applied after --smoke-test; validated like the file)",
    )


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="robust-ray", description="Training-data perturbation sweeps on Ray.")
    p.add_argument("--version", action="version", version=f"robust-ray {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a sweep end to end")
    r.add_argument("spec", help="sweep spec (YAML)")
    _execution_args(r, "output folder or URI, e.g. s3://bucket/x (default: results/<sweep name>)", "sweep")
    r.add_argument(
        "--extend",
        action="store_true",
        help="grow the finished sweep in --output to this spec: keep its trials, train only new ones",
    )
    r.set_defaults(fn=_run)

    s = sub.add_parser("search", help="let Optuna find the best levels (the spec's search section), on Ray Tune")
    s.add_argument("spec", help="sweep spec (YAML) with a search section")
    _execution_args(
        s, "output folder (default: results/<sweep name>); URIs need search.storage", "search (and its study)"
    )
    s.set_defaults(fn=_search)

    v = sub.add_parser("validate", help="check a spec and print its plan; trains nothing")
    v.add_argument("spec", help="sweep spec (YAML)")
    v.add_argument("--output", help="a finished sweep's folder: also print what run --extend would keep and train")
    _smoke_flag(v)
    v.set_defaults(fn=_validate)

    e = sub.add_parser("evaluate", help="evaluate a finished sweep's kept models on more suites (pgd, autoattack, ...)")
    e.add_argument("results", help="results folder of a sweep run with training.save_models")
    e.add_argument(
        "--suite",
        action="append",
        metavar="NAME[:key=value,...]",
        help="a suite to add, e.g. pgd:norm=linf,eps=[0.1,0.3],n=500 (repeatable)",
    )
    e.add_argument("--suites", metavar="FILE.yaml", help="suites to add, as the spec's suites: section")
    e.add_argument("--data-root", help="folder holding the datasets (else spec, $ROBUST_RAY_DATA)")
    e.add_argument("--address", help="Ray cluster to evaluate on (default: a local Ray on this machine)")
    e.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    e.set_defaults(fn=_evaluate)

    a = sub.add_parser("analyze", help="statistics, plots and a report from a results folder")
    a.add_argument(
        "results", help="folder with trials.parquet and metrics.parquet, a folder of such folders, or a glob"
    )
    a.add_argument("--output", help="where to write the report (default: RESULTS/analysis)")
    a.add_argument(
        "--recipe",
        action="append",
        metavar="FILE",
        help="analysis recipe (YAML, see analysis/README.md); repeatable (default: from the sweep's design)",
    )
    a.add_argument("--no-plots", action="store_true", help="tables and report only (faster)")
    a.add_argument(
        "--summary",
        action="store_true",
        help="RESULTS is a folder of reproductions (analysis/reproductions): write its README.md summary page",
    )
    a.set_defaults(fn=_analyze)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except UserError as e:
        print(f"robust-ray: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
