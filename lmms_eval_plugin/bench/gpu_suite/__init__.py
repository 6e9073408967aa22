"""`lvu-ext bench --gpu-suite`: the GPU measurements (memory, workload, video processor) in one prepared command."""
