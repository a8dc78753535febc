"""Ray engine vs local engine on the tiny-item and 1080p-frame workloads (``python -m benchmarks.ray_row``).

Both run on this machine, in the same process, one after the other: the local
engine moves rows over socket pairs and shared memory, the Ray engine through
Ray's object store with the driver coordinating every batch.  Throughput is the
steady state (from the first item's arrival at the consumer to the end of the
stream); start-up (from ``run()`` to that first arrival: processes or actors
starting, nodes opening) is reported apart.  The Ray here is started once, before
the runs (2 CPUs, as on the development machine), so Ray's own start is in
neither figure.  Ray pays off when a flow needs more cores or GPUs than one
machine has, not on one machine.
"""

from __future__ import annotations

import argparse

from benchmarks.workloads import frames, tiny_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, the best kept")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        n_items, n_frames = (20_000, 40) if args.quick else (200_000, 300)
        rows = []
        workloads = (("tiny items, items/s", tiny_items, n_items), ("1080p frames, frames/s", frames, n_frames))
        for name, run, n in workloads:
            local = max((run(n, {"engine": "local"}) for _ in range(args.repeat)), key=lambda r: r.per_s)
            remote = max((run(n, {"engine": "ray"}) for _ in range(args.repeat)), key=lambda r: r.per_s)
            rows.append((name, local, remote))
        print(f"{'workload':<24} | {'local':>10} | {'ray':>10} | ray/local | start-up local | start-up ray")
        for name, local, remote in rows:
            print(
                f"{name:<24} | {local.per_s:>10,.0f} | {remote.per_s:>10,.0f} | {remote.per_s / local.per_s:>8.2f}x"
                f" | {local.startup_s:>12.2f} s | {remote.startup_s:>10.2f} s"
            )
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
