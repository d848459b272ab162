"""Fault soak at scale: apply and destroy the example stack (tiny cross-encoder) under injected faults, many seeds.

The CI test (tests/reliability/test_fault_soak.py) runs three seeds; this script runs as many as you ask, with a
fault rate you choose, and prints per seed: faults injected (429 / 503 / dropped), whether apply and destroy
converged, the end state check, and wall time. Apply and destroy run at the tool's defaults (4 changes at once,
the default upload workers, parallel bulk loading: what users run; `--parallelism 1 --upload-workers 1` for the old
sequential case) with a seeded sandbox RNG; with concurrency the order of requests varies, so a failing seed
replays the same fault rates, not always the same faults. Final line: seeds converged of seeds run.

    .venv/bin/python bench/fault_soak.py [--seeds 1-20 | --seeds 3,7,11] [--rate 0.1] [--drops 3]

Prints numbers; it passes or fails nothing (exit 1 only when a seed did not converge, so a script can notice).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.example_stack import (  # noqa: E402
    INDEX,
    MULTI_PART_VOCAB,
    ExampleStack,
    KillableSandbox,
    connect,
    movie_ids,
    stack_state,
)


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high) + 1)) if high else [int(low)]
    return seeds


def faults(seed: int, rate: float, drops: int) -> dict:
    return {"seed": seed, "rules": [{"status": 429, "fraction": rate / 2}, {"status": 503, "fraction": rate / 2},
                                    {"drop": True, "fraction": 0.03, "times": drops}]}


def injected(sandbox: KillableSandbox, since: int) -> tuple[int, int, int]:
    entries = sandbox.log.entries(since)
    return (sum(e["status"] == 429 and e["fault"] == "status" for e in entries),
            sum(e["status"] == 503 and e["fault"] == "status" for e in entries),
            sum(e["fault"] == "drop" for e in entries))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-10", help="seeds: 1-10, or 3,7,11")
    parser.add_argument("--rate", type=float, default=0.1, help="fraction of requests answering 429 or 503")
    parser.add_argument("--drops", type=int, default=3, help="dropped connections at most, per apply or destroy")
    parser.add_argument("--parallelism", type=int, default=None, help="changes at once (default: the tool's)")
    parser.add_argument("--upload-workers", type=int, default=None, help="parts at once (default: the tool's)")
    args = parser.parse_args()
    knobs = {k: v for k, v in (("parallelism", args.parallelism), ("upload_workers", args.upload_workers))
             if v is not None}
    logging.disable(logging.WARNING)  # the client's retry warnings would drown the table
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # and so would the traceback of each dropped request

    from testbed.tiny_model import build_tiny_cross_encoder

    root = Path(tempfile.mkdtemp(prefix="fault-soak-"))
    model = build_tiny_cross_encoder(root / "model", vocab_size=MULTI_PART_VOCAB)
    (root / "artifacts").mkdir()
    (root / "work").mkdir()
    stack = ExampleStack(model_path=model, artifacts=root / "artifacts", workdir=root / "work", stack="soak")
    sandbox = KillableSandbox().start()
    es = connect(sandbox.url)
    try:
        stack.apply(es, **knobs)  # traces once, gives the expected end state
        expected = stack_state(es)
        stack.destroy(es)
        print(f"{'seed':>6} {'apply 429/503/drop':>20} {'destroy 429/503/drop':>22} {'converged':>10} {'seconds':>8}")
        failed = 0
        for seed in parse_seeds(args.seeds):
            sandbox.reset()
            cache = stack.cache_dir(fresh=True)
            started, ok = time.perf_counter(), True
            sandbox.faults = type(sandbox.faults).from_dict(faults(seed, args.rate, args.drops))
            try:
                stack.apply(es, cache_dir=cache, **knobs)
            except Exception as exc:  # noqa: BLE001 - reported, not raised: the table goes on
                ok = False
                print(f"{seed:>6} apply failed: {type(exc).__name__}: {exc}")
            apply_faults = injected(sandbox, 0)
            sandbox.faults = type(sandbox.faults)()
            ok = ok and stack_state(es) == expected and es.count(index=INDEX)["count"] == len(movie_ids())
            mark = sandbox.log.last_seq
            sandbox.faults = type(sandbox.faults).from_dict(faults(seed + 1000, args.rate, args.drops))
            try:
                stack.destroy(es, cache_dir=cache, **{k: v for k, v in knobs.items() if k == "parallelism"})
            except Exception as exc:  # noqa: BLE001
                ok = False
                print(f"{seed:>6} destroy failed: {type(exc).__name__}: {exc}")
            destroy_faults = injected(sandbox, mark)
            sandbox.faults = type(sandbox.faults)()
            state = stack_state(es)
            ok = ok and not (state["ledger"] or state["models"] or state["endpoints"])
            failed += not ok
            print(f"{seed:>6} {'/'.join(map(str, apply_faults)):>20} {'/'.join(map(str, destroy_faults)):>22} "
                  f"{'yes' if ok else 'NO':>10} {time.perf_counter() - started:>8.1f}")
        total = len(parse_seeds(args.seeds))
        print(f"converged: {total - failed} of {total} seeds (rate {args.rate}, drops {args.drops}, "
              f"{knobs or 'defaults'})")
        return 1 if failed else 0
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
