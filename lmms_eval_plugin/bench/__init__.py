"""`lvu-ext bench`: one sub-package per thing measured (memory/, workload/, decode/, gpu_suite/), each with its
output next to its measurement; cli.py dispatches, and the models, clips and machine facts they share sit here."""
