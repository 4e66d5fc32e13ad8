"""A Libcloud compute driver whose VMs are this machine's throwaway hosts (podman
containers of the bare Debian server image): ``provider = podman`` in a host part that
extends hostout.cloud. Real hosts, reached over SSH like any cloud's, so ``bin/hostout host1
create deploy`` and ``destroy`` can be tried (and tested) end to end without an account.

- ``create_node`` starts a host named ``hostout-cloud-NAME``, gives its login user
  (``deploy``, with sudo) a fresh random password (returned as ``extra["password"]``, as
  clouds that make passwords do) and authorises the SSH key given as ``auth``;
- the VM's SSH port on 127.0.0.1 is ``extra["ssh_port"]`` (22 at its address on a
  ``network``), its user ``extra["username"]``;
- VMs outlive the process that made them (they are labelled ``hostout-cloud``, not as test
  hosts), until ``destroy_node``.

Driver options (``provider-network``, ``provider-publish``): a podman network to put the
VMs on (``podman network create --internal NET`` makes servers with no way out), and the
container ports to publish on 127.0.0.1 (``8080 9001``; ``extra["ports"]`` says where).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from libcloud.compute.base import (
    Node,
    NodeAuthPassword,
    NodeAuthSSHKey,
    NodeDriver,
    NodeImage,
    NodeLocation,
    NodeSize,
)
from libcloud.compute.types import NodeState

from .hosts import start_named_host
from .image import IMAGE, LOGIN_USER, ensure_image
from .podman import PodmanError, podman

LABEL = "hostout-cloud"
NAME_LABEL = "hostout-cloud.name"
NETWORK_LABEL = "hostout-cloud.network"
PREFIX = "hostout-cloud-"
STATES = {"running": NodeState.RUNNING, "exited": NodeState.STOPPED,
          "stopped": NodeState.STOPPED, "created": NodeState.PENDING,
          "configured": NodeState.PENDING, "paused": NodeState.PAUSED,
          "stopping": NodeState.STOPPING, "removing": NodeState.TERMINATED}


class PodmanNodeDriver(NodeDriver):
    """VMs that are podman containers of hostout's bare Debian host image."""

    type = "hostout-podman"
    name = "Podman (hostout's throwaway hosts)"
    website = "https://podman.io/"
    features = {"create_node": ["ssh_key", "password"]}

    def __init__(self, network: str | None = None, publish: str = "") -> None:
        # no account, no connection: Libcloud's base needs neither here
        self.network = network or None
        self.publish = tuple(int(p) for p in publish.replace(",", " ").split())

    # -- what the provider offers ------------------------------------------------------------
    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        # a container takes what it needs: one size, as a VM of this machine would be
        return [NodeSize("container", "container (shares this machine)", ram=1024, disk=10,
                         bandwidth=None, price=0.0, driver=self)]

    def list_images(self, location: NodeLocation | None = None) -> list[NodeImage]:
        return [NodeImage(IMAGE, "Debian 12 bookworm (hostout bare host: sshd, sudo)",
                          driver=self)]

    def list_locations(self) -> list[NodeLocation]:
        return [NodeLocation("local", "this machine", "", driver=self)]

    # -- VMs -------------------------------------------------------------------------------------
    def list_nodes(self) -> list[Node]:
        listing = podman("ps", "--all", "--filter", f"label={LABEL}=1", "--format", "json")
        return [self._node(entry) for entry in json.loads(listing.stdout or "[]")]

    def _node(self, entry: dict[str, Any], password: str | None = None) -> Node:
        labels = entry.get("Labels") or {}
        state = STATES.get(str(entry.get("State", "")).lower(), NodeState.UNKNOWN)
        ports = {p["container_port"]: p["host_port"] for p in entry.get("Ports") or []}
        public: list[str] = []
        private: list[str] = []
        extra: dict[str, Any] = {"username": LOGIN_USER, "container": entry["Names"][0]}
        if state == NodeState.RUNNING:
            if labels.get(NETWORK_LABEL):
                ip = self._ip(entry["Id"])
                public, private = [ip], [ip]
                extra["ssh_port"] = 22
                extra["ports"] = {p: f"{ip}:{p}" for p in self.publish}
            elif 22 in ports:
                public = ["127.0.0.1"]
                extra["ssh_port"] = ports[22]
                extra["ports"] = {c: f"127.0.0.1:{h}" for c, h in ports.items() if c != 22}
        if password:
            extra["password"] = password
        return Node(entry["Id"], labels.get(NAME_LABEL, entry["Names"][0]), state, public,
                    private, self, extra=extra)

    def _ip(self, container: str) -> str:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        return podman("inspect", "--format", template, container).stdout.split()[0]

    def create_node(self, name: str, size: NodeSize | None = None,
                    image: NodeImage | None = None, location: NodeLocation | None = None,
                    auth: NodeAuthSSHKey | NodeAuthPassword | None = None) -> Node:
        ensure_image(image.id if image else IMAGE, log=lambda line: None)  # built once, here
        labels = {LABEL: "1", NAME_LABEL: name}
        if self.network:
            labels[NETWORK_LABEL] = self.network
        host = start_named_host(PREFIX + name, labels=labels, network=self.network,
                                publish=self.publish, image=image.id if image else IMAGE)
        try:
            password = auth.password if isinstance(auth, NodeAuthPassword) else (
                secrets.token_urlsafe(18))
            host.set_login(LOGIN_USER, password)
            if isinstance(auth, NodeAuthSSHKey):
                host.authorize_key(auth.pubkey)
        except BaseException:
            host.remove()
            raise
        (entry,) = [e for e in json.loads(podman("ps", "--all", "--filter",
                                                 f"id={host.container}", "--format",
                                                 "json").stdout)]
        return self._node(entry, password)

    def start_node(self, node: Node) -> bool:
        podman("start", node.id)
        return True

    def stop_node(self, node: Node) -> bool:
        podman("stop", "--time", "5", node.id)
        return True

    def reboot_node(self, node: Node) -> bool:
        podman("restart", "--time", "5", node.id)
        return True

    def destroy_node(self, node: Node) -> bool:
        try:
            podman("rm", "--force", "--time", "0", node.id)
        except PodmanError as err:
            if "no such container" not in err.stderr.lower():
                raise
        return True
