"""What a run did and how to resume it: per-request records, the resume journal and its
per-request use, and the run manifest (`lvu_ext_run.json`)."""
