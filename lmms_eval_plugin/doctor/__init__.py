"""`lvu-ext doctor`: checks what an lvu_ext run needs, one line per check, with the fix."""
