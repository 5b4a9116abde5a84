"""A fake `gh` for the recipe scripts' tests: records each call (its arguments, and the file passed with
--input) as a JSON line in $FAKE_GH_LOG and replays the first answer in $FAKE_GH_ANSWERS (a JSON list)
whose `args` equal the call's: `stdout`, `exit` (default 0), and for `run download`, `files` written into
the --dir folder. A call with no answer fails loudly (exit 97), so a test cannot pass on an unplanned call."""

import json
import os
import sys
from pathlib import Path


def main(args: list[str]) -> int:
    record = {"args": args}
    if "--input" in args:
        record["input"] = json.loads(Path(args[args.index("--input") + 1]).read_text(encoding="utf-8"))
    with open(os.environ["FAKE_GH_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    for answer in json.loads(Path(os.environ["FAKE_GH_ANSWERS"]).read_text(encoding="utf-8")):
        if answer["args"] == args:
            for name, content in answer.get("files", {}).items():
                Path(args[args.index("--dir") + 1], name).write_text(content, encoding="utf-8")
            sys.stdout.write(answer.get("stdout", ""))
            sys.stderr.write(answer.get("stderr", ""))
            return answer.get("exit", 0)
    print(f"fake gh: no answer for {args}", file=sys.stderr)
    return 97


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
