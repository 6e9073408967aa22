"""Print set-up command N (1: install + run the main job, 2: the tests) exactly as the
README's "Set-up: the two commands" section shows it, so CI runs what a user copies."""

import re
import sys
from pathlib import Path

readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
section = readme.split("## Set-up: the two commands", 1)[1].split("\n## ", 1)[0]
commands = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
if len(commands) != 2:
    sys.exit(f"README set-up section has {len(commands)} bash blocks, expected exactly 2")
print(commands[int(sys.argv[1]) - 1])
