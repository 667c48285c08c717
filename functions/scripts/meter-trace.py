#!/usr/bin/env python3
"""Where a bench's DynamoDB request units go, item kind by item kind.

Reads the stderr of a run with OCTOSCOPE_METER_TRACE set (each metered
request on a line: `meter: write|failed|read|query METER ...`, from
shared/src/adapters/aws/dynamodb/meter.rs) and prints WRU and RRU per
delivery by meter (the first meter seen is the webhook's, the second the
ledger-stream function's, as `make bench-cost` creates them) and by item
kind (the key's first part; the sort key's for items of a shared partition).

Usage:
  OCTOSCOPE_METER_TRACE=1 BENCH_DELIVERIES=2000 make bench-cost 2> trace.txt
  functions/scripts/meter-trace.py trace.txt 2000 [STOP]

STOP: a key that ends the part counted (default `DLV#4242#example`: the
demo's deliveries, not GitHub's example payloads sent after them).
"""

import collections
import re
import sys


def kind(pk, sk):
    head = pk.split("#")[0]
    if head in ("REPO", "ORG", "RUN", "DEP"):
        part = re.split(r"[#_]", sk)[0] if sk else ""
        return f"{head} {part}".strip()
    if head == "ROLLUP":
        return f"ROLLUP {sk[:2].rstrip('#')}"
    return head


def main():
    path, deliveries = sys.argv[1], int(sys.argv[2])
    stop = sys.argv[3] if len(sys.argv) > 3 else "DLV#4242#example"
    meters, units = {}, collections.defaultdict(lambda: [0, 0.0, 0.0])
    for line in open(path, errors="replace"):
        if not line.startswith("meter: "):
            continue
        if stop in line:
            break
        p = line.split()
        who = meters.setdefault(p[2], ["webhook", "stream"][len(meters)] if len(meters) < 2 else "other")
        if p[1] in ("write", "failed"):
            pk, sk = p[3], p[4].rstrip(":")
            wru = float(line.rsplit(":", 1)[1].split()[0])
            row = units[(who, p[1], kind(pk, sk))]
            row[0] += 1
            row[1] += wru
        elif p[1] == "read":
            rru = float(p[3])
            keys = line.split("absent:", 1)[1].split()
            kinds = sorted({kind(*k.split("|", 1)) for k in keys}) or ["(absent)"]
            row = units[(who, "read", ",".join(kinds) + (" +absent" if int(p[5]) and keys else ""))]
            row[0] += 1
            row[2] += rru
        elif p[1] == "query":
            row = units[(who, "query", "")]
            row[0] += 1
            row[2] += float(p[3])
    print(f"{'meter':8} {'request':7} {'items':44} {'calls':>6} {'WRU/dlv':>8} {'RRU/dlv':>8}")
    for (who, req, what), (calls, wru, rru) in sorted(units.items(), key=lambda kv: -(kv[1][1] * 5 + kv[1][2])):
        print(f"{who:8} {req:7} {what[:44]:44} {calls:6} {wru / deliveries:8.3f} {rru / deliveries:8.3f}")


if __name__ == "__main__":
    main()
