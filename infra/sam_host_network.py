"""Runs the SAM CLI so that `--docker-network host` really puts the function's container in the
host's network, where the emulators and fakes of the tests listen on 127.0.0.1.

SAM 1.170 only skips joining a named network when asked for "host"; Podman then puts the
container on its bridge. This wrapper, for infra/sam-local only, creates such containers with
network_mode="host" instead, without the port map (meaningless there), and starts the runtime
interface emulator on the very host port SAM will call, with its runtime API on another free
loopback port, so nothing collides with anything else on the machine.
"""

import socket
import sys

import docker.models.containers as containers
from samcli.cli.main import cli

RIE_CONTAINER_PORT = "8080"
_create = containers.ContainerCollection.create


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_in_host_network(self, image, command=None, **kwargs):
    if kwargs.get("network_mode") or "--docker-network" not in sys.argv:
        return _create(self, image, command, **kwargs)
    ports = kwargs.pop("ports", None) or {}
    binding = ports.get(RIE_CONTAINER_PORT)
    entrypoint = list(kwargs.get("entrypoint") or [])
    if binding and entrypoint and entrypoint[0].endswith("aws-lambda-rie"):
        host_port = binding[1] if isinstance(binding, tuple) else binding
        kwargs["entrypoint"] = entrypoint + [
            "--runtime-interface-emulator-address", f"127.0.0.1:{host_port}",
            "--runtime-api-address", f"127.0.0.1:{_free_port()}",
        ]
    kwargs["network_mode"] = "host"
    return _create(self, image, command, **kwargs)


containers.ContainerCollection.create = _create_in_host_network

if __name__ == "__main__":
    sys.argv[0] = "sam"
    sys.exit(cli())
