"""``agents doctor`` flags a CA the host trusts and the sandbox image lacks, and the
command it prints (``agents sandbox build --ca-bundle ... --tag ...``) fixes it."""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cli.commands.doctor import check_ca
from sandboxes import trust
from sandboxes.image_builder import SANDBOX_IMAGE, ImageBuilder


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


def make_ca(path: Path, name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    return pem


def test_fingerprints_read_every_certificate_and_skip_junk(tmp_path: Path) -> None:
    one = make_ca(tmp_path / "a" / "one.crt", "one")
    two = make_ca(tmp_path / "a" / "nested" / "two.pem", "two")
    (tmp_path / "a" / "notes.txt").write_text("-----BEGIN CERTIFICATE-----\n!!\n")
    assert len(trust.fingerprints(one + b"garbage\n" + two)) == 2
    assert (
        trust.fingerprints(b"-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----") == set()
    )
    found = trust.local_cas((tmp_path / "a", tmp_path / "missing"))
    assert sorted(p.name for p in found.values()) == ["one.crt", "two.pem"]


@pytest.mark.docker
def test_doctor_flags_a_missing_ca_and_its_command_fixes_it(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    base = os.environ.get("AGENTS_TEST_SANDBOX_IMAGE") or SANDBOX_IMAGE
    hosts_cas = tmp_path / "ca-certificates"
    ca = hosts_cas / "corp-proxy.crt"
    make_ca(ca, "Corp TLS inspection")

    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_ca(docker_client, base, (empty,)).ok is True

    flagged = check_ca(docker_client, base, (hosts_cas,))
    assert flagged.ok is False
    assert "corp-proxy.crt" in flagged.detail
    assert f"agents sandbox build --ca-bundle {ca} --tag {base}" in flagged.fix

    # What the printed command does, under a tag of this test's own.
    fixed = f"agents-test-ca-{os.getpid()}:latest"
    builder = ImageBuilder(docker_client, cache_dir=tmp_path / "cache", progress=lambda _l: None)
    original = docker_client.images.get(base)
    # The tag starts as the same image as the base's (as a copy of a shared tag would):
    # building it anew must not remove the image the other tag still names.
    original.tag(fixed)
    try:
        builder.build(offline_base=True, ca_bundles=[ca], image=fixed)
        assert check_ca(docker_client, fixed, (hosts_cas,)).ok is True
        assert docker_client.images.get(base).id == original.id  # left alone
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(fixed, force=True)
