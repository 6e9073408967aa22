"""`lvu-ext check-videos`: a pre-flight check of a run's videos before any GPU time is spent.

collect.py finds the videos the way a run does (lmms-eval's TaskManager, each task's eval
docs and doc_to_visual) with the frame plan the model would use; run.py reads each distinct
(video, plan) on all cores with the run's reader under the run's deadline (worker.py, one
killable process per core; probe.py reads the header); resume.py keeps one JSON line per
finished video so a rerun skips them; report.py writes the Markdown and JSON."""
