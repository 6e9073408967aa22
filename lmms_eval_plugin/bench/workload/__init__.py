"""`lvu-ext bench --workload`: a small benchmark of K videos x Q questions through the lmms-eval CLI, questions per hour."""
