"""The README's AWS deploy steps, checked with SAM's own code where no AWS account is needed.

- No step passes a file's content or anything multi-line through `--parameter-overrides`
  (SAM cuts a command-line value at its first space; CloudFormation parameters hold 4 KB):
  the config goes to the table with `homehook config push`.
- Every template parameter has a default and is a small scalar with a pattern, a list of
  values or a number, so Enter at each guided prompt deploys, and nothing a later plain
  `sam deploy` re-sends from samconfig can wipe data.
- samconfig.toml saves no parameter values.
- The outputs `homehook target add --stack` reads exist (TableName, SecretArn, BaseUrl), and the
  table and secret have no fixed names (a deploy after `sam delete` must not collide with the
  retained table or a secret in its deletion window).
- Every `homehook` command in the AWS section is one the CLI knows (its `--help` answers).

Run with the SAM CLI's Python (infra/test does): python infra/check_deploy_guide.py [homehook]
"""

import pathlib
import re
import shlex
import subprocess
import sys
import tomllib

import yaml
from samcli.cli.types import CfnParameterOverridesType

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fail(message: str) -> None:
    print(f"check_deploy_guide: {message}", file=sys.stderr)
    sys.exit(1)


def aws_section() -> str:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^## On AWS\n(.*?)^## ", readme, re.S | re.M)
    if not m:
        fail("README.md has no '## On AWS' section")
    return m.group(1)


def shell_lines(section: str) -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def template():
    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short forms (!Ref, !Sub, ...) read as plain values.
    Loader.add_multi_constructor("!", lambda loader, tag, node: None)
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)


def main() -> None:
    section = aws_section()
    lines = shell_lines(section)
    if not any(l.startswith("sam deploy") for l in lines):
        fail("the AWS section has no sam deploy step")
    declared = template()["Parameters"]
    for line in lines:
        if "--parameter-overrides" not in line:
            continue
        if "$(" in line or "file://" in line:
            fail(f"a step passes a file or a command's output as parameters: {line}")
        value = shlex.split(line)[shlex.split(line).index("--parameter-overrides") + 1]
        parsed = CfnParameterOverridesType().convert((value,), None, None)
        for name, v in parsed.items():
            if name not in declared:
                fail(f"the guide passes {name}, which template.yaml does not declare")
            if "\n" in v or len(v.encode()) > 4096:
                fail(f"the guide passes a multi-line or large value for {name}")
    for name, p in declared.items():
        if "Default" not in p:
            fail(f"parameter {name} has no default: Enter at its guided prompt would not deploy")
        if p.get("Type") == "String" and not ("AllowedPattern" in p or "AllowedValues" in p):
            fail(f"parameter {name} is free text: config belongs in the table, not in the stack")
    tpl = template()
    outputs = tpl.get("Outputs", {})
    for needed in ("TableName", "SecretArn", "BaseUrl"):
        if needed not in outputs:
            fail(f"template.yaml has no {needed} output (homehook target add --stack reads it)")
    resources = tpl["Resources"]
    if "TableName" in resources["Table"]["Properties"]:
        fail("the table has a fixed name: a deploy after sam delete collides with the retained one")
    if "Name" in resources["ClientSecret"]["Properties"]:
        fail("the secret has a fixed name: a deploy after sam delete collides with the deleted one")
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env, commands in samconfig.items():
        if not isinstance(commands, dict):
            continue
        for command, table in commands.items():
            if isinstance(table, dict) and "parameter_overrides" in table.get("parameters", {}):
                fail(f"samconfig.toml [{env}.{command}.parameters] saves parameter_overrides")
    checked = 0
    if len(sys.argv) > 1:
        homehook = sys.argv[1]
        for line in lines:
            if not line.startswith("homehook "):
                continue
            words = [w for w in shlex.split(line.split("  #")[0]) if not w.startswith("<")]
            # The subcommand path: words up to the first option or argument value.
            path = []
            rest = words[1:]
            while rest:
                w = rest.pop(0)
                if w == "--target":
                    rest.pop(0)
                    continue
                if w.startswith("-"):
                    break
                path.append(w)
            for cut in range(len(path), 0, -1):
                r = subprocess.run([homehook, *path[:cut], "--help"], capture_output=True, text=True)
                if r.returncode == 0:
                    break
            else:
                fail(f"the CLI does not know: {line}")
            flags = [w.split("=")[0] for w in words if w.startswith("--")]
            for flag in flags:
                if flag not in r.stdout and flag != "--help":
                    fail(f"`{' '.join(path[:cut])}` has no {flag}: {line}")
            checked += 1
    print(f"deploy guide: {len(lines)} shell lines, no config through parameters, "
          f"{len(declared)} parameters with defaults, outputs for target add, "
          f"{checked} homehook commands known to the CLI")


if __name__ == "__main__":
    main()
