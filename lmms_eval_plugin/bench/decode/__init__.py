"""`lvu-ext bench --decode`: frame readers on realistic clips (wall time, CPU time, peak memory, pixels)."""
