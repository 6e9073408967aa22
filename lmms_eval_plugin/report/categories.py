"""The sub-score categories of each benchmark, as the harness's documents name them:
read by the benchmark table (its columns) and by the sub-score rebuilders (their groups)."""

MLVU_DEV_TYPES = (  # paper's abbreviations (Table 2) -> harness task_type
    ("TR", "topic_reasoning"),
    ("AR", "anomaly_reco"),
    ("NQA", "needle"),
    ("ER", "ego"),
    ("PQA", "plotQA"),
    ("AO", "order"),
    ("AC", "count"),
)

VIDEOMME_DURATIONS = (("Short", "short"), ("Medium", "medium"), ("Long", "long"))

# LongVideoBench `duration_group` values are the upper bounds of the paper's groups (Table 3).
LVB_GROUPS = (("(8,15]", 15), ("(15,60]", 60), ("(180,600]", 600), ("(900,3600]", 3600))
