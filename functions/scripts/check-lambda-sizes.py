#!/usr/bin/env python3
"""The functions' zip sizes against their budget and their recorded sizes.

    check-lambda-sizes.py LAMBDA_DIR [--record FILE] [--update] [--self-test]

Fails (exit 1) when any zip is over the budget (2.5 MiB = 2,621,440 bytes,
MAX_ZIP_BYTES overrides) or more than 10 % (MAX_GROWTH_PCT) over the size
recorded for it in FILE (functions/lambda-sizes.txt: `<function> <bytes>`
per line, `#` comments), or when a recorded function has no zip. A zip that
shrank passes; `--update` then writes the new sizes into FILE (commit it with
the change that moved them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

BUDGET = int(os.environ.get("MAX_ZIP_BYTES", 2_621_440))
GROWTH_PCT = float(os.environ.get("MAX_GROWTH_PCT", 10))


def read_record(path: Path) -> dict[str, int]:
    sizes = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, size = line.partition(" ")
        if not size.strip().isdigit():
            raise SystemExit(f"{path}:{n}: expected '<function> <bytes>', got {line!r}")
        sizes[name] = int(size)
    return sizes


def check(measured: dict[str, int], recorded: dict[str, int]) -> list[str]:
    errors = []
    for name in sorted(recorded.keys() - measured.keys()):
        errors.append(f"{name}: recorded but no zip was built")
    for name, size in sorted(measured.items()):
        if size > BUDGET:
            errors.append(f"{name}: {size:,} bytes is over the budget of {BUDGET:,} bytes (2.5 MiB)")
        was = recorded.get(name)
        if was is None:
            errors.append(f"{name}: no recorded size (run with --update and commit the record)")
        elif size > was * (1 + GROWTH_PCT / 100):
            errors.append(f"{name}: {size:,} bytes is {100 * (size - was) / was:.1f} % over its recorded {was:,} bytes (limit {GROWTH_PCT:g} %)")
    return errors


def write_record(path: Path, measured: dict[str, int]) -> None:
    head = [l for l in path.read_text().splitlines() if l.startswith("#")] if path.exists() else []
    path.write_text("\n".join(head + [f"{k} {v}" for k, v in sorted(measured.items())]) + "\n")


def self_test() -> int:
    ok = True
    rec = {"webhook": 2_000_000, "api": 1_000_000}
    cases = [
        ({"webhook": 2_000_000, "api": 1_000_000}, 0, "equal sizes pass"),
        ({"webhook": 1_500_000, "api": 1_000_000}, 0, "a smaller zip passes"),
        ({"webhook": 2_199_999, "api": 1_000_000}, 0, "growth under 10 % passes"),
        ({"webhook": 2_200_001, "api": 1_000_000}, 1, "growth over 10 % fails"),
        ({"webhook": 2_000_000, "api": 2_700_000}, 2, "over the budget (and the growth) fails"),
        ({"webhook": 2_000_000}, 1, "a recorded function without a zip fails"),
        ({"webhook": 2_000_000, "api": 1_000_000, "new": 10}, 1, "an unrecorded zip fails"),
    ]
    for measured, n, what in cases:
        got = check(measured, rec)
        good = len(got) == n
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} {what}: {got}")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d, "sizes.txt")
        p.write_text("# comment\nwebhook 1\n")
        write_record(p, {"webhook": 5, "api": 6})
        good = read_record(p) == {"webhook": 5, "api": 6} and p.read_text().startswith("# comment\n")
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} --update keeps the comments and writes every size")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lambda_dir", type=Path, nargs="?")
    ap.add_argument("--record", type=Path, default=Path(__file__).resolve().parents[1] / "lambda-sizes.txt")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.lambda_dir is None:
        ap.error("LAMBDA_DIR is required")
    measured = {z.parent.name: z.stat().st_size for z in sorted(args.lambda_dir.glob("*/bootstrap.zip"))}
    recorded = read_record(args.record) if args.record.exists() else {}
    for name, size in sorted(measured.items()):
        was = recorded.get(name)
        delta = f"{100 * (size - was) / was:+.1f} % vs recorded {was:,}" if was else "not recorded"
        print(f"{name:18} {size:>12,} bytes  ({delta})")
    if args.update:
        write_record(args.record, measured)
        print(f"recorded in {args.record}")
        recorded = measured
    errors = check(measured, recorded)
    for e in errors:
        print(f"lambdas-check: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
