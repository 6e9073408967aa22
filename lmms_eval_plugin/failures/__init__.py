"""What ends a run and what it tells the user: the error types (which ones end the run
with a non-zero status), the request guard, and the out-of-memory advice."""
