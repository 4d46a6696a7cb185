"""Copy a CloudFormation/SAM template with some parameter defaults replaced, for linting a
configuration that the defaults do not select (make validate lints template.yaml with
OrgMode=on this way: sam validate has no parameter overrides).

    python3 tools/render_params.py IN OUT Name=value [Name=value ...]

Line-based, standard library only: it rewrites the `Default:` line of each named top-level
parameter and fails if a parameter or its Default line is missing, so a renamed parameter
cannot make the lint pass on an unchanged copy.
"""

import json
import sys


def render(text: str, values: dict[str, str]) -> str:
    lines = text.split("\n")
    try:
        start = lines.index("Parameters:") + 1
    except ValueError:
        sys.exit("no top-level Parameters: section")
    end = next(
        (i for i in range(start, len(lines)) if lines[i] and not lines[i].startswith(" ")),
        len(lines),
    )
    todo = dict(values)
    current = None
    for i in range(start, end):
        line = lines[i]
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            current = line.strip()[:-1]
        elif current in todo and line.startswith("    Default:"):
            # JSON strings are valid YAML scalars, and keep "on"/"off" strings.
            lines[i] = "    Default: " + json.dumps(todo.pop(current))
    if todo:
        sys.exit(f"parameters or Default lines not found: {', '.join(sorted(todo))}")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    src, dst, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"not Name=value: {pair}")
        values[name] = value
    with open(src, encoding="utf-8") as f:
        text = f.read()
    with open(dst, "w", encoding="utf-8") as f:
        f.write(render(text, values))


if __name__ == "__main__":
    main()
