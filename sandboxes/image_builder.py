"""Building the sandbox images on machines that may reach no container registry.

Four images (:data:`KINDS`): the default sandbox, the same with Debian's Node.js or Go
(``sandboxes/images/Dockerfile`` with ``TOOLCHAIN``), and the egress proxy
(``sandboxes/images/egress-proxy/``), each on top of a base. The base is the official
``debian:bookworm-slim`` when a registry answers, and otherwise (or with
``offline_base=True``) ``agents-base:bookworm``: a debootstrap minbase tree imported
with ``docker import``. Everything goes through the Docker API, so the engine may be
remote; only debootstrap itself runs on this machine.

Rebuilding is cheap: the debootstrap tree is kept as a tarball in the cache directory,
an image whose inputs (build context, CA bundle, base image id) are unchanged is not
rebuilt at all, and a CA bundle lands in the last layers, so an image with one reuses
the layers of the image without.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from process.exceptions import ImageBuildFailed

OFFLINE_BASE = "agents-base:bookworm"
OFFICIAL_BASE = "debian:bookworm-slim"
SANDBOX_IMAGE = "agents-sandbox:latest"
SUITE = "bookworm"
DEFAULT_CACHE_DIR = Path("/var/cache/agents")
IMAGES_DIR = Path(__file__).parent / "images"
#: Label on each image: a digest of everything it was built from.
INPUTS_LABEL = "agents.image.inputs"
CA_NAME = "agents-ca.crt"
_APT_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))


@dataclass(frozen=True)
class ImageKind:
    """One image ``agents sandbox build`` makes: its default tag and build context."""

    name: str
    tag: str
    context: Path
    #: ``TOOLCHAIN`` for the sandbox Dockerfile; None for an image of its own.
    toolchain: str | None
    help: str


KINDS: dict[str, ImageKind] = {
    kind.name: kind
    for kind in (
        ImageKind("sandbox", SANDBOX_IMAGE, IMAGES_DIR, "", "Python 3, git, build tools"),
        ImageKind(
            "node", "agents-sandbox-node:latest", IMAGES_DIR, "node", "the sandbox plus Node, npm"
        ),
        ImageKind("go", "agents-sandbox-go:latest", IMAGES_DIR, "go", "the sandbox plus Go"),
        ImageKind(
            "egress",
            "agents-egress-proxy:latest",
            IMAGES_DIR / "egress-proxy",
            None,
            "the setup egress proxy (Squid)",
        ),
    )
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildReport:
    """What :meth:`ImageBuilder.build` did, for the CLI to print."""

    image: str
    base: str
    base_source: str
    built: bool


def _silent(_: str) -> None:
    return None


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def apt_sources(sources: Iterable[Path] = _APT_SOURCES, suite: str = SUITE) -> list[AptSource]:
    """This host's apt sources for ``suite`` and its -updates and -security suites.

    Reading the host's configuration keeps mirror names out of the code: a machine
    behind a local mirror or proxy builds from the same place its apt does.
    """
    found: list[AptSource] = []
    for source in sources:
        files = sorted(source.glob("*")) if source.is_dir() else [source]
        for path in files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            parse = _deb822 if path.suffix == ".sources" else _one_line
            found += [s for s in parse(text) if s.suite == suite or s.suite.startswith(suite + "-")]
    return found


def apt_mirror(sources: Iterable[Path] = _APT_SOURCES, suite: str = SUITE) -> str | None:
    """The mirror this host's apt uses for ``suite`` itself, or None (debootstrap's own)."""
    return next((s.uri for s in apt_sources(sources, suite) if s.suite == suite), None)


def _deb822(text: str) -> list[AptSource]:
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if (
            fields.get("enabled", "yes").lower() == "no"
            or "deb" not in fields.get("types", "").split()
        ):
            continue
        components = tuple(fields.get("components", "main").split())
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split()[:1]:
            found += [AptSource(uri, suite, components) for suite in suites]
    return found


def _one_line(text: str) -> list[AptSource]:
    found = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            found.append(AptSource(words[1], words[2], tuple(words[3:]) or ("main",)))
    return found


def inputs_digest(context: bytes, base_id: str) -> str:
    """A digest of everything an image is built from; equal digest, no rebuild."""
    h = hashlib.sha256()
    for part in (context, base_id.encode()):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def build_context(kind: ImageKind, ca_bundle: bytes | None, *, apt_ca: bool = False) -> bytes:
    """The build context as a tar. For the sandbox images: the Dockerfile, ``extra-ca/``
    (with the bundle) and ``apt-ca/`` (with it too when apt itself needs it, see
    :func:`apt_needs_ca`); for the proxy, its directory. The tar is the same for the
    same inputs (no times, no owners), so it can be digested."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if kind.toolchain is None:
            for path in sorted(kind.context.iterdir()):
                if path.is_file():
                    mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                    _add_bytes(tar, path.name, path.read_bytes(), mode)
        else:
            _add_sandbox_context(tar, kind, ca_bundle, apt_ca)
    return buf.getvalue()


def _add_sandbox_context(
    tar: tarfile.TarFile, kind: ImageKind, ca_bundle: bytes | None, apt_ca: bool
) -> None:
    _add_bytes(tar, "Dockerfile", (kind.context / "Dockerfile").read_bytes())
    for directory in ("apt-ca", "extra-ca"):
        dir_info = tarfile.TarInfo(directory)
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o755
        tar.addfile(dir_info)
    readme = IMAGES_DIR / "extra-ca" / "README"
    if readme.is_file():
        _add_bytes(tar, "extra-ca/README", readme.read_bytes())
    if ca_bundle is not None:
        _add_bytes(tar, f"extra-ca/{CA_NAME}", ca_bundle)
        if apt_ca:
            _add_bytes(tar, f"apt-ca/{CA_NAME}", ca_bundle)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def apt_needs_ca(mirror: str | None, sources: Iterable[Path] = _APT_SOURCES) -> bool:
    """Whether apt inside the build fetches over https (then a TLS-intercepting proxy's
    CA must be in place before the first ``apt-get``); plain-http mirrors are checked by
    signature and do not need it."""
    uris = [mirror] if mirror else [s.uri for s in apt_sources(sources)]
    return any(uri.startswith("https:") for uri in uris)


def read_ca_bundle(path: Path) -> bytes:
    """The bundle's bytes, refusing files that hold no PEM certificate."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageBuildFailed(f"CA bundle {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ImageBuildFailed(f"CA bundle {path}: no PEM certificate in it")
    return data


def read_ca_bundles(paths: Sequence[Path]) -> bytes | None:
    """Every bundle's certificates in one PEM text, or None for none."""
    if not paths:
        return None
    return b"".join(read_ca_bundle(path).rstrip(b"\n") + b"\n" for path in paths)


class ImageBuilder:
    """Builds ``agents-base:bookworm`` and ``agents-sandbox:latest`` through one client."""

    def __init__(
        self,
        client: docker.DockerClient,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        progress: Progress = _silent,
    ) -> None:
        self.client = client
        self.cache_dir = cache_dir
        self.progress = progress

    def build(
        self,
        *,
        kind: str = "sandbox",
        offline_base: bool = False,
        base: str | None = None,
        ca_bundles: Sequence[Path] = (),
        force: bool = False,
        mirror: str | None = None,
        image: str | None = None,
    ) -> BuildReport:
        """Make sure ``image`` (the kind's own tag by default) exists and is built from
        the current inputs. Only that tag changes: other images are left alone."""
        spec = KINDS[kind]
        image = image or spec.tag
        ca = read_ca_bundles(ca_bundles)
        if offline_base:
            base_name, source = self.ensure_offline_base(force=force, mirror=mirror), "debootstrap"
        else:
            base_name, source = self.resolve_base(base, mirror)
        context = build_context(spec, ca, apt_ca=ca is not None and apt_needs_ca(mirror))
        args = {"BASE": base_name} | ({"TOOLCHAIN": spec.toolchain} if spec.toolchain else {})
        digest = inputs_digest(
            context + repr(sorted(args.items())).encode(), self._base_id(base_name)
        )
        current = self._image_labels(image)
        if not force and current is not None and current.get(INPUTS_LABEL) == digest:
            self.progress(f"{image} is up to date (built from {base_name})")
            return BuildReport(image=image, base=base_name, base_source=source, built=False)
        self.progress(f"building {image} from {base_name}")
        previous = self._image_id(image)
        self._docker_build(image, context, args, digest)
        if previous is not None and previous != self._image_id(image):
            self._remove_quietly(previous)
        return BuildReport(image=image, base=base_name, base_source=source, built=True)

    def _base_id(self, name: str) -> str:
        return self._image_id(name) or ""

    def _remove_quietly(self, image_id: str) -> None:
        """Drop the image this build replaced, unless a container still uses it or another
        tag still names it (``--tag`` must leave every other image alone)."""
        try:
            tags = self.client.images.get(image_id).tags
        except docker.errors.ImageNotFound:
            return
        if tags:
            self.progress(f"kept the previous image {image_id[:19]}: still tagged {tags[0]}")
            return
        try:
            self.client.images.remove(image_id)
        except docker.errors.APIError as exc:
            self.progress(f"kept the previous image {image_id[:19]}: {exc.explanation or exc}")

    def resolve_base(self, base: str | None, mirror: str | None) -> tuple[str, str]:
        """The base image to build on and where it came from (local, pulled, debootstrap).

        Only the default base falls back to the offline one when no registry answers;
        a base named explicitly must be there or be pullable.
        """
        name = base or OFFICIAL_BASE
        if self._image_id(name):
            return name, "local"
        self.progress(f"pulling {name}")
        try:
            self.client.images.pull(name)
        except docker.errors.DockerException as exc:
            if base is not None:
                raise ImageBuildFailed(
                    f"base image {name} is not here and pull failed: {exc}"
                ) from exc
            self.progress(f"no registry reachable ({exc}); building the base offline instead")
            return self.ensure_offline_base(mirror=mirror), "debootstrap"
        return name, "pulled"

    def ensure_offline_base(self, *, force: bool = False, mirror: str | None = None) -> str:
        """Import ``agents-base:bookworm`` from a debootstrap tarball, making it if needed."""
        if not force and self._image_id(OFFLINE_BASE):
            self.progress(f"{OFFLINE_BASE} is already present")
            return OFFLINE_BASE
        tarball = self.base_tarball(force=force, mirror=mirror)
        repository, _, tag = OFFLINE_BASE.partition(":")
        self.progress(f"importing {tarball} as {OFFLINE_BASE}")
        try:
            self.client.api.import_image_from_file(
                str(tarball),
                repository=repository,
                tag=tag,
                changes=['CMD ["bash"]', "ENV LANG=C.UTF-8"],
            )
        except docker.errors.DockerException as exc:
            raise ImageBuildFailed(f"docker import of {tarball} failed: {exc}") from exc
        if not self._image_id(OFFLINE_BASE):
            raise ImageBuildFailed(f"docker import of {tarball} did not produce {OFFLINE_BASE}")
        return OFFLINE_BASE

    def base_tarball(self, *, force: bool = False, mirror: str | None = None) -> Path:
        """The cached debootstrap root filesystem as a tar, created on first use."""
        arch = _dpkg_architecture()
        tarball = self.cache_dir / "base" / f"{SUITE}-minbase-{arch}.tar"
        if tarball.is_file() and not force:
            self.progress(f"using cached {tarball}")
            return tarball
        if shutil.which("debootstrap") is None:
            raise ImageBuildFailed("debootstrap is not installed (apt-get install debootstrap)")
        if os.geteuid() != 0:
            raise ImageBuildFailed("debootstrap needs root; run `agents sandbox build` as root")
        debs = self.cache_dir / "debootstrap-debs"
        debs.mkdir(parents=True, exist_ok=True)
        tarball.parent.mkdir(parents=True, exist_ok=True)
        chosen = mirror or apt_mirror()
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix="rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            argv = [
                "debootstrap",
                "--variant=minbase",
                f"--arch={arch}",
                f"--cache-dir={debs.resolve()}",
                SUITE,
                str(rootfs),
            ]
            if chosen:
                argv.append(chosen)
            self.progress("running " + " ".join(argv))
            self._run(argv, "debootstrap")
            _scrub_rootfs(rootfs)
            _write_sources(rootfs, chosen)
            partial = tarball.with_suffix(".tar.partial")
            self._run(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
                "tar of the debootstrap tree",
            )
            partial.replace(tarball)
        return tarball

    def _run(self, argv: list[str], what: str) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            raise ImageBuildFailed(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail))

    def _docker_build(
        self, image: str, context: bytes, buildargs: dict[str, str], digest: str
    ) -> None:
        try:
            lines: Iterator[dict[str, Any]] = self.client.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=image,
                buildargs=buildargs,
                labels={INPUTS_LABEL: digest},
                pull=False,
                rm=True,
                forcerm=True,
                decode=True,
            )
            recent: deque[str] = deque(maxlen=20)
            for line in lines:
                if "error" in line:
                    detail = line.get("errorDetail", {}).get("message") or line["error"]
                    output = "\n".join(recent)
                    raise ImageBuildFailed(
                        f"building {image} failed: {detail.strip()}\nlast output:\n{output}"
                    )
                text = str(line.get("stream", "")).rstrip()
                if text:
                    recent.append(text)
                    self.progress(text)
        except docker.errors.DockerException as exc:
            raise ImageBuildFailed(f"building {image} failed: {exc}") from exc
        if self._image_labels(image) is None:
            raise ImageBuildFailed(f"building {image} finished without producing the image")

    def _image_id(self, name: str) -> str | None:
        try:
            return str(self.client.images.get(name).id)
        except docker.errors.ImageNotFound:
            return None

    def _image_labels(self, name: str) -> dict[str, str] | None:
        try:
            labels = self.client.images.get(name).labels
        except docker.errors.ImageNotFound:
            return None
        return dict(labels or {})


def _dpkg_architecture() -> str:
    try:
        proc = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ImageBuildFailed(f"cannot tell the Debian architecture (dpkg): {exc}") from exc
    return proc.stdout.strip()


def _write_sources(rootfs: Path, mirror: str | None) -> None:
    """The host's bookworm, -updates and -security sources, so images get security fixes.

    debootstrap writes only the main suite. An explicit ``mirror`` replaces the host's
    for the main and -updates suites. With no usable host sources, debootstrap's stay.
    """
    sources = apt_sources()
    if mirror:
        sources = [
            AptSource(mirror, s.suite, s.components) if not s.suite.endswith("-security") else s
            for s in sources
        ]
    if any(s.suite == SUITE for s in sources):
        lines = dict.fromkeys(s.line() for s in sources)
        (rootfs / "etc" / "apt" / "sources.list").write_text("\n".join(lines) + "\n")


def _scrub_rootfs(rootfs: Path) -> None:
    """Drop what debootstrap copied from this host and what only makes the image bigger."""
    for name in ("etc/hostname", "etc/resolv.conf"):
        path = rootfs / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/archives/*.deb", "var/log/*.log"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
