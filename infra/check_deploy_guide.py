"""The README's AWS deploy steps, checked with SAM's own code where no AWS account is needed.

- The parameters file the guide makes (README.md, between the `deploy-params` markers) carries
  homehook.toml to CloudFormation byte for byte through SAM's own `--parameter-overrides`
  parser (a value on the command line would be cut at its first space).
- samconfig.toml saves no parameter values: a saved `HomehookConfig` would be sent again by
  every later plain `sam deploy`, replacing the config with whatever was saved.
- The template declares every parameter the guide passes.

Run with the SAM CLI's Python (infra/test does): python infra/check_deploy_guide.py
"""

import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib

from samcli.cli.types import CfnParameterOverridesType

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fail(message: str) -> None:
    print(f"check_deploy_guide: {message}", file=sys.stderr)
    sys.exit(1)


def guide_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- deploy-params -->\s*```sh\n(.*?)```\s*<!-- /deploy-params -->", readme, re.S)
    if not block:
        fail("README.md has no deploy-params block")
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def main() -> None:
    make_params, deploy = guide_commands()
    if not deploy.startswith("sam deploy --parameter-overrides file://"):
        fail(f"the guide's deploy line changed: {deploy}")
    params_file = shlex.split(deploy)[-1].removeprefix("file://")
    # A config with what breaks naive quoting: spaces, quotes of both kinds, braces, newlines.
    config = (ROOT / "homehook.example.toml").read_text() + "# it's \"quoted\" {{ a }} and { b }\n"
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        (work / "homehook.toml").write_text(config)
        # The guide's own command, as a shell runs it.
        subprocess.run(["sh", "-c", make_params], cwd=work, check=True)
        values = CfnParameterOverridesType().convert((f"file://{work / params_file}",), None, None)
    if values.get("HomehookConfig") != config:
        fail("HomehookConfig does not reach CloudFormation byte for byte through SAM's parser")
    template = (ROOT / "template.yaml").read_text()
    for name in values:
        if not re.search(rf"^  {re.escape(name)}:\n    Type:", template, re.M):
            fail(f"the guide passes {name}, which template.yaml does not declare")
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for section, commands in samconfig.items():
        if not isinstance(commands, dict):
            continue
        for command, table in commands.items():
            if isinstance(table, dict) and "parameters" in table and "parameter_overrides" in table["parameters"]:
                fail(f"samconfig.toml [{section}.{command}.parameters] saves parameter_overrides")
    print(f"deploy guide: homehook.toml ({len(config)} bytes) survives SAM's parameter parsing; samconfig saves no parameters")


if __name__ == "__main__":
    main()
