"""Which certificate authorities this host trusts that a sandbox image does not.

Behind a TLS-intercepting proxy the host trusts the proxy's CA, added locally (Debian:
``/usr/local/share/ca-certificates``; Red Hat: ``/etc/pki/ca-trust/source/anchors``),
and every HTTPS client in a sandbox built without it fails with "self-signed
certificate in certificate chain". ``agents doctor`` compares the two by certificate
fingerprint and prints the ``agents sandbox build --ca-bundle`` command that fixes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

#: Where hosts keep the CAs their administrator added.
LOCAL_CA_DIRS = (
    Path("/usr/local/share/ca-certificates"),
    Path("/etc/pki/ca-trust/source/anchors"),
)
#: The system bundle inside the sandbox images (Debian's).
IMAGE_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
MAX_FILES = 500
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def fingerprints(pem: bytes) -> set[str]:
    """SHA-256 fingerprints of the certificates in a PEM text (bad blocks skipped)."""
    found = set()
    for body in _PEM.findall(pem[:MAX_BUNDLE_BYTES]):
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        found.add(hashlib.sha256(der).hexdigest())
    return found


def local_cas(dirs: tuple[Path, ...] = LOCAL_CA_DIRS) -> dict[str, Path]:
    """Each locally added CA certificate's fingerprint and the file holding it."""
    found: dict[str, Path] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        files = sorted(p for p in directory.rglob("*") if p.suffix in (".crt", ".pem"))
        for path in files[:MAX_FILES]:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for print_ in fingerprints(data):
                found.setdefault(print_, path)
    return found


def image_cas(client: docker.DockerClient, image: str) -> set[str]:
    """Fingerprints in ``image``'s system bundle, read from a container that never runs."""
    container = client.containers.create(image, command=["true"], network_disabled=True)
    try:
        stream, _stat = container.get_archive(IMAGE_BUNDLE)
        data = b"".join(stream)
    except docker.errors.NotFound:
        return set()
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    return fingerprints(handle.read(MAX_BUNDLE_BYTES))
    return set()


@dataclass(frozen=True)
class MissingCAs:
    """Host CA files whose certificates ``image`` lacks, and the command that adds them."""

    image: str
    files: tuple[Path, ...]

    @property
    def command(self) -> str:
        bundles = " ".join(f"--ca-bundle {path}" for path in self.files)
        return f"agents sandbox build {bundles} --tag {self.image}"


def missing_cas(
    client: docker.DockerClient, image: str, dirs: tuple[Path, ...] = LOCAL_CA_DIRS
) -> MissingCAs:
    local = local_cas(dirs)
    if not local:
        return MissingCAs(image, ())
    inside = image_cas(client, image)
    files = dict.fromkeys(path for print_, path in local.items() if print_ not in inside)
    return MissingCAs(image, tuple(files))
