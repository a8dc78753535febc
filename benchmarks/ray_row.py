"""Ray engine vs local engine on the tiny-item and 1080p-frame workloads (``python -m benchmarks.ray_row``).

Both run on this machine: the local engine moves rows over socket pairs and
shared memory, the Ray engine through Ray's object store with the driver
coordinating every batch.  Ray pays off when a flow needs more cores or GPUs
than one machine has, not on one machine.
"""

from __future__ import annotations

import argparse

from benchmarks.workloads import frames, tiny_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        n_items, n_frames = (20_000, 40) if args.quick else (200_000, 300)
        rows = []
        workloads = (("tiny items, items/s", tiny_items, n_items), ("1080p frames, frames/s", frames, n_frames))
        for name, run, n in workloads:
            local = run(n, {"engine": "local"}).per_s
            remote = run(n, {"engine": "ray"}).per_s
            rows.append((name, local, remote))
        print(f"{'workload':<26} | {'local':>12} | {'ray':>12} | ray/local")
        for name, local, remote in rows:
            print(f"{name:<26} | {local:>12,.0f} | {remote:>12,.0f} | {remote / local:.2f}x")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
