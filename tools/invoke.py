#!/usr/bin/env python3
"""`make invoke EVENT=events/<case>.json`: run the function once on an event file, locally.

Starts the patched emulator and the function under `cargo lambda watch`, sends the file with
`cargo lambda invoke`, prints the result (or the error) and stops both. The samples in events/
name documentation ARNs that the fresh emulator does not hold, so most answer with a typed
error such as ExportNotFound: that is the function's real answer to them. `make demo` shows
the seeded scenarios end to end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from local import invoke, start_emulator, start_function, stop_all


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: invoke.py events/<case>.json")
    path = Path(sys.argv[1])
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"{path}: {exc}")
    try:
        endpoint = start_emulator()
        port, env = start_function(endpoint)
        print(json.dumps(invoke(port, payload, env, allow_error=True), indent=2))
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
