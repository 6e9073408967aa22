"""`lvu-ext reproduce`: run a table of the paper through the lmms-eval CLI and compare its
differences, row by row, with the paper's."""
