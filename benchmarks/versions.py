"""Tokenize CPU time of this checkout against another dhtgraph checkout, interleaved.

Each round runs one subprocess per version (``PYTHONPATH`` = that checkout, started in
that folder; the version it imported is checked and printed); a subprocess
tokenizes the benchmark photograph (``_common.load_image``) at 224² and 512², without a
budget and with ``max_tokens=400``, one intra-op thread, one warm-up call and ``--calls``
timed calls, and reports the median process CPU time per call (``time.process_time``:
less sensitive than wall time on a shared machine) and the token count. The table gives
the median over ``--rounds`` rounds. ``--tie-break`` adds a row for this checkout with
that tie rule. Writes ``benchmarks/results/versions.json``.

Run: ``python benchmarks/versions.py --base /path/to/other/checkout [--rounds 3] [--calls 7]``
(e.g. ``git worktree add /tmp/base 02e1659`` for 0.1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path.append(str(_HERE))
from _common import write_json  # noqa: E402

CASES = [(224, None), (224, 400), (512, None), (512, 400)]

_CHILD = r"""
import json, statistics, sys, time
import torch
torch.set_num_threads(1)
sys.path.append(sys.argv[1])
from _common import load_image
import dhtgraph
calls, tie_break = int(sys.argv[2]), sys.argv[3]
extra = {"num_threads": 1} if "num_threads" in dhtgraph.tokenize.__code__.co_varnames else {}
if tie_break != "-":
    extra["tie_break"] = tie_break
out = {}
for side, budget in %s:
    image = load_image(side)
    kw = dict(extra) if budget is None else dict(extra, max_tokens=budget)
    dhtgraph.tokenize(image, **kw)
    times = []
    for _ in range(calls):
        start = time.process_time()
        tokens = dhtgraph.tokenize(image, **kw)
        times.append(time.process_time() - start)
    out[f"{side}/{budget}"] = [statistics.median(times) * 1e3, int(tokens.num_tokens.sum())]
out["module"] = [dhtgraph.__file__, dhtgraph.__version__]
print(json.dumps(out))
""" % CASES


def run(checkout: Path, calls: int, tie_break: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    # cwd = the checkout: ``python -c`` puts the working directory first on sys.path, so
    # run from anywhere else it would import whatever dhtgraph lies there.
    done = subprocess.run([sys.executable, "-c", _CHILD, str(_HERE), str(calls), tie_break],
                          env=env, capture_output=True, text=True, check=True, cwd=checkout)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    module, version = out.pop("module")
    if not Path(module).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"Expected dhtgraph from {checkout} (imported {module})")
    out["version"] = version
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, type=Path, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=7)
    parser.add_argument("--tie-break", default=None, help="extra row: this checkout with it")
    args = parser.parse_args()
    rows = {"base": (args.base, "-"), "this": (_ROOT, "-")}
    if args.tie_break:
        rows[f"this, tie_break={args.tie_break}"] = (_ROOT, args.tie_break)
    runs = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, (checkout, tie_break) in rows.items():
            runs[name].append(run(checkout, args.calls, tie_break))
    versions = {name: results[0].pop("version") for name, results in runs.items()}
    for results in runs.values():
        for r in results:
            r.pop("version", None)
    table = {name: {case: [statistics.median(r[case][0] for r in results), results[0][case][1]]
                    for case in results[0]} for name, results in runs.items()}
    print(f"{'version':28s}" + "".join(f"{c:>18s}" for c in table["base"]))
    for name, cases in table.items():
        label = f"{name} ({versions[name]})"
        print(f"{label:28s}" + "".join(f"{ms:11.1f} ms {n:4d}" for ms, n in cases.values()))
    write_json("versions", {"rounds": args.rounds, "calls": args.calls, "versions": versions,
                            "table": table})


if __name__ == "__main__":
    main()
