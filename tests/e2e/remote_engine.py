"""A second, real Docker engine for split-mode tests: dockerd on 127.0.0.2 over TCP with TLS.

Its own data root, exec root and unix socket make it a different engine from the host's (nothing
of the first one's images, containers or volumes is visible to it). The test makes a CA and
server/client certificates with `cryptography`, as an operator would with openssl. It runs without
iptables management (the host's dockerd owns those chains), with a default bridge and an address
pool of its own; published ports then go through docker-proxy, as on any such host.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.runtime.engine import engine_client

ENGINE_ADDRESS = "127.0.0.2"
BRIDGE = "cpremote0"  # the second engine's default bridge: host.docker.internal (host-gateway) is its address
BRIDGE_CIDR = "10.214.0.1/24"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make_certs(directory: Path, address: str) -> Path:
    """ca.pem, server cert/key (for `address`) and client cert.pem/key.pem: DOCKER_CERT_PATH layout."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def pem(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clawpen test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        k = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), pem(k)

    server_cert, server_key = leaf(
        "engine", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address(address))]
    )
    client_cert, client_key = leaf("clawpen", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    _write(directory / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    _write(directory / "server-cert.pem", server_cert)
    _write(directory / "server-key.pem", server_key)
    _write(directory / "cert.pem", client_cert)
    _write(directory / "key.pem", client_key)
    return directory


@dataclass
class RemoteEngine:
    url: str
    certs: Path
    process: subprocess.Popen[bytes]
    root: Path

    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.url, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(self.certs)}

    def client(self) -> docker.DockerClient:
        return engine_client(self.env())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def start_remote_engine(root: Path) -> RemoteEngine:
    """Start the second engine (root needed, like the host's dockerd); raises with its log on failure."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)  # a leftover of a killed run
    for cmd in (["link", "add", BRIDGE, "type", "bridge"], ["addr", "add", BRIDGE_CIDR, "dev", BRIDGE]):
        subprocess.run(["ip", *cmd], check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True, capture_output=True)
    certs = make_certs(root / "certs", ENGINE_ADDRESS)
    port = _free_port(ENGINE_ADDRESS)
    log = (root / "dockerd.log").open("wb")
    cmd = [
        shutil.which("dockerd") or "dockerd",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "-H", f"unix://{root / 'docker.sock'}",
        "-H", f"tcp://{ENGINE_ADDRESS}:{port}",
        "--tlsverify",
        "--tlscacert", str(certs / "ca.pem"),
        "--tlscert", str(certs / "server-cert.pem"),
        "--tlskey", str(certs / "server-key.pem"),
        "--bridge", BRIDGE,
        "--iptables=false",
        "--ip6tables=false",
        "--default-address-pool", "base=10.213.0.0/16,size=24",
    ]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DOCKER_HOST": ""})
    engine = RemoteEngine(f"tcp://{ENGINE_ADDRESS}:{port}", certs, process, root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            engine.client().ping()
            return engine
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    text = (root / "dockerd.log").read_text(errors="replace")[-2000:]
    engine.stop()
    raise RuntimeError(f"second dockerd did not start: {text}")
