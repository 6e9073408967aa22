"""`python -m lmms_eval_plugin.bench` = `lvu-ext bench`."""

import sys

from lmms_eval_plugin.bench.cli import main

sys.exit(main())
