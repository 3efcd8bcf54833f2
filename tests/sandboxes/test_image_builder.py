from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import docker
import docker.errors
import pytest

from process.exceptions import ImageBuildFailed
from sandboxes.image_builder import (
    CA_NAME,
    IMAGES_DIR,
    KINDS,
    OFFICIAL_BASE,
    OFFLINE_BASE,
    SANDBOX_IMAGE,
    ImageBuilder,
    apt_mirror,
    apt_sources,
    build_context,
    inputs_digest,
    read_ca_bundle,
)

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_mirror_comes_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert apt_mirror([tmp_path]) == "http://mirror.example/debian"
    assert [s.line() for s in apt_sources([tmp_path])] == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://security.example/debian-security bookworm-security main",
    ]


def test_mirror_comes_from_one_line_sources(tmp_path: Path) -> None:
    sources = tmp_path / "sources.list"
    sources.write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert apt_mirror([sources]) == "http://mirror.example/debian"


def test_no_matching_source_leaves_the_choice_to_debootstrap(tmp_path: Path) -> None:
    (tmp_path / "other.sources").write_text(
        "Types: deb\nURIs: http://x.example/ubuntu\nSuites: jammy\n\n"
        "Types: deb\nURIs: http://y.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    assert apt_mirror([tmp_path, tmp_path / "missing.list"]) is None
    assert apt_sources([tmp_path]) == []


def test_inputs_digest_changes_with_every_input() -> None:
    base = inputs_digest(b"FROM x", "sha256:1")
    assert inputs_digest(b"FROM x", "sha256:1") == base
    assert inputs_digest(b"FROM y", "sha256:1") != base
    assert inputs_digest(b"FROM x", "sha256:2") != base


def test_build_context_carries_the_dockerfile_and_the_ca_bundle() -> None:
    sandbox = KINDS["sandbox"]
    dockerfile = (IMAGES_DIR / "Dockerfile").read_bytes()
    with_ca = build_context(sandbox, PEM)
    with tarfile.open(fileobj=io.BytesIO(with_ca)) as tar:
        names = tar.getnames()
        assert tar.extractfile("Dockerfile").read() == dockerfile  # type: ignore[union-attr]
        assert tar.extractfile(f"extra-ca/{CA_NAME}").read() == PEM  # type: ignore[union-attr]
    assert "extra-ca" in names
    assert f"apt-ca/{CA_NAME}" not in names  # a plain-http mirror needs no CA for apt
    without = build_context(sandbox, None)
    with tarfile.open(fileobj=io.BytesIO(without)) as tar:
        assert f"extra-ca/{CA_NAME}" not in tar.getnames()
    assert build_context(sandbox, None) == without  # the same bytes: it can be digested
    assert inputs_digest(with_ca, "sha256:1") != inputs_digest(without, "sha256:1")
    with tarfile.open(fileobj=io.BytesIO(build_context(sandbox, PEM, apt_ca=True))) as tar:
        assert tar.extractfile(f"apt-ca/{CA_NAME}").read() == PEM  # type: ignore[union-attr]


def test_the_proxy_context_is_its_own_directory() -> None:
    with tarfile.open(fileobj=io.BytesIO(build_context(KINDS["egress"], None))) as tar:
        names = set(tar.getnames())
        assert {"Dockerfile", "squid.conf", "allow", "entrypoint", "health"} <= names


def test_dockerfile_defaults_to_an_official_base_and_makes_a_non_root_user() -> None:
    text = (IMAGES_DIR / "Dockerfile").read_text()
    assert "ARG BASE=debian:bookworm-slim" in text
    assert "USER 1000:1000" in text
    for package in ("git", "python3", "build-essential", "ca-certificates"):
        assert package in text


def test_a_ca_bundle_must_hold_a_certificate(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.pem", tmp_path / "bad.pem"
    good.write_bytes(PEM)
    bad.write_text("not a certificate")
    assert read_ca_bundle(good) == PEM
    with pytest.raises(ImageBuildFailed, match="no PEM certificate"):
        read_ca_bundle(bad)
    with pytest.raises(ImageBuildFailed, match=r"missing\.pem"):
        read_ca_bundle(tmp_path / "missing.pem")


@pytest.mark.docker
def test_build_skips_work_when_the_images_are_up_to_date(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    try:
        docker_client.images.get(OFFLINE_BASE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{OFFLINE_BASE} is missing; run `agents sandbox build --offline-base`")
    # AGENTS_TEST_SANDBOX_IMAGE names a tag of one's own where the default is shared.
    image = os.environ.get("AGENTS_TEST_SANDBOX_IMAGE") or SANDBOX_IMAGE
    builder = ImageBuilder(docker_client, cache_dir=tmp_path, progress=lambda _line: None)
    builder.build(offline_base=True, image=image)  # current, whatever it was before

    lines: list[str] = []
    report = ImageBuilder(docker_client, cache_dir=tmp_path, progress=lines.append).build(
        offline_base=True, image=image
    )

    assert report.built is False
    assert report.base == OFFLINE_BASE
    assert f"{image} is up to date (built from {OFFLINE_BASE})" in lines
    assert not list(tmp_path.iterdir())  # no debootstrap, no tarball: nothing was done


@pytest.mark.docker
def test_without_a_registry_the_default_base_falls_back_to_the_offline_one(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    try:
        docker_client.images.get(OFFICIAL_BASE)
        pytest.skip(f"{OFFICIAL_BASE} is present here; the fallback is not exercised")
    except docker.errors.ImageNotFound:
        pass
    try:
        docker_client.images.get(OFFLINE_BASE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{OFFLINE_BASE} is missing; run `agents sandbox build --offline-base`")
    lines: list[str] = []
    builder = ImageBuilder(docker_client, cache_dir=tmp_path, progress=lines.append)
    try:
        base, source = builder.resolve_base(None, None)
    except ImageBuildFailed as exc:
        pytest.fail(f"no fallback: {exc}")
    if source == "pulled":
        pytest.skip("a registry answered; the fallback is not exercised")
    assert (base, source) == (OFFLINE_BASE, "debootstrap")
    assert any("building the base offline instead" in line for line in lines)
    with pytest.raises(ImageBuildFailed, match="pull failed"):
        builder.resolve_base("agents-test/no-such-base:1", None)
