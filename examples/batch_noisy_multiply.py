"""Client User Guide, "Batching": submit many calls in one request, collect them in one.

    python examples/batch_noisy_multiply.py

Runs on the embedded Compute service and endpoint; set GLOBUS_COMPUTE_ENDPOINT_ID to run on a
real endpoint of the hosted service instead (you will be asked to log in the first time).
"""

from __future__ import annotations

from globus_compute.local import local_or_hosted


def noisy_multiply(x: float, y: float, noise: float = 1, offset: float = 0) -> float:
    import random

    return x * y + random.uniform(offset - noise, offset + noise)


def main() -> None:
    with local_or_hosted() as (gcc, endpoint_id):
        noisy_fn_id = gcc.register_function(noisy_multiply)
        batch = gcc.create_batch()
        calls = []
        for val in range(7):
            fn_args = (val + 3, val)
            fn_kwargs = {"noise": val // 5, "offset": val + 1}
            batch.add(noisy_fn_id, args=fn_args, kwargs=fn_kwargs)
            calls.append((fn_args, fn_kwargs))

        batch_res = gcc.batch_run(endpoint_id, batch)

        # Task ids come back in the order the calls were added, grouped by function id.
        task_ids = [tid for fn_task_list in batch_res["tasks"].values() for tid in fn_task_list]
        for tid in task_ids:
            gcc.get_result(tid, timeout=120)  # wait for each task to finish
        batch_status = gcc.get_batch_result(task_ids)  # all finished: one call returns them

        for ((x, y), kw), tid in zip(calls, task_ids, strict=True):
            result = batch_status[tid]["result"]
            low, high = x * y + kw["offset"] - kw["noise"], x * y + kw["offset"] + kw["noise"]
            print(
                f"noisy_multiply({x}, {y}, **{kw}) = {result:.3f} in [{low}, {high}]: "
                f"{low <= result <= high}"
            )


if __name__ == "__main__":
    main()
