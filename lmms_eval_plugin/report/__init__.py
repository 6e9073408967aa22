"""`lvu-ext report`: comparison tables and plots from lmms-eval output folders.

collect (results files -> records) -> table / plots / markdown; benchmarks and subscores
describe what the harness writes per benchmark; references loads the published numbers
shipped in lmms_eval_plugin/data/reference_results.json; benchrows reads `--bench` JSONs.
"""
