"""A fake `reconciler` for the recipe scripts' tests: records its arguments as a JSON line in
$FAKE_RECONCILER_LOG and replays the answer in $FAKE_RECONCILER_ANSWERS (a JSON object) for its command
(`plan`, `apply`, ...): `stdout`, `stderr`, `exit` (default 0); with --out FILE, `saved` is written there."""

import json
import os
import sys
from pathlib import Path


def main(args: list[str]) -> int:
    with open(os.environ["FAKE_RECONCILER_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(args) + "\n")
    answer = json.loads(Path(os.environ["FAKE_RECONCILER_ANSWERS"]).read_text(encoding="utf-8"))[args[0]]
    if "--out" in args and "saved" in answer:
        Path(args[args.index("--out") + 1]).write_text(answer["saved"], encoding="utf-8")
    sys.stdout.write(answer.get("stdout", ""))
    sys.stderr.write(answer.get("stderr", ""))
    return answer.get("exit", 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
