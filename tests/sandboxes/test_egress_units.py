"""Allow-lists, the proxy's access log and the run's egress report, without an engine."""

from __future__ import annotations

import ipaddress

import docker
import pytest
from docker.models.containers import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.blueprint.sandbox import check_egress, egress_allow, sandbox_config
from jobs.checks import excerpt_lines
from jobs.repo_config import parse_repo_config
from process import allowlist
from process.exceptions import RepoConfigError, StepFailed
from runs.artifacts import MAX_EGRESS_HOSTS, EgressReport
from sandboxes import egress_log
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.egress_proxy import EgressProxy


def test_entries_are_normalized_and_addresses_refused() -> None:
    assert allowlist.parse_hosts(["PyPI.org.", "*.crates.io", ".crates.io", "pypi.org"]) == (
        "pypi.org",
        ".crates.io",
    )
    for bad in ("10.0.0.1", "http://pypi.org", "", "a..b", "-x.org", "pypi.org:443"):
        with pytest.raises(ValueError, match=r"not a host name|an address"):
            allowlist.normalize(bad)


def test_a_domain_entry_covers_its_names_and_nothing_beside_it() -> None:
    entries = allowlist.parse_hosts([".crates.io", "pypi.org"])
    assert allowlist.allows(entries, "crates.io")
    assert allowlist.allows(entries, "static.crates.io")
    assert allowlist.allows(entries, "PYPI.ORG")
    assert not allowlist.allows(entries, "evilcrates.io")
    assert not allowlist.allows(entries, "files.pypi.org")
    assert not allowlist.allows(entries, "pypi.org.evil.com")


def test_a_repository_narrows_the_operators_list_and_never_widens_it() -> None:
    operator = allowlist.parse_hosts(["pypi.org", "files.pythonhosted.org", ".crates.io"])
    assert allowlist.narrow(operator, None).allowed == operator
    narrowed = allowlist.narrow(operator, ["pypi.org", "index.crates.io", "example.com"])
    assert narrowed.allowed == ("pypi.org", "index.crates.io")
    assert narrowed.refused == ("example.com",)
    # Asking for a whole domain gets what the operator allows inside it, no more.
    assert allowlist.narrow(["a.example.org"], [".example.org"]).allowed == ("a.example.org",)


host = st.from_regex(r"\A[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,3}\Z")


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    operator=st.lists(st.one_of(host, host.map(lambda h: "." + h)), max_size=8),
    repository=st.lists(st.one_of(host, host.map(lambda h: "." + h)), max_size=8),
    probe=host,
)
def test_narrowing_never_allows_what_the_operator_does_not(
    operator: list[str], repository: list[str], probe: str
) -> None:
    narrowed = allowlist.narrow(operator, repository)
    if allowlist.allows(narrowed.allowed, probe):
        assert allowlist.allows(operator, probe)
        assert allowlist.allows(repository, probe)


def test_network_policy_in_agents_yml() -> None:
    config = parse_repo_config("network: {setup: true, allow: [pypi.org]}\nsetup: pip install .\n")
    assert config.network.allow == ["pypi.org"]
    for phase in ("agent", "checks"):
        with pytest.raises(RepoConfigError, match="never have network"):
            parse_repo_config(f"network: {{{phase}: true}}\n")
    with pytest.raises(RepoConfigError, match="not a host name"):
        parse_repo_config("network: {setup: true, allow: ['http://x']}\n")

    base = SandboxConfig(allow=("pypi.org", "files.pythonhosted.org"))
    assert sandbox_config(base, config).allow == ("pypi.org",)
    assert sandbox_config(base, config).network is True
    offline = parse_repo_config("setup: make\n")
    assert sandbox_config(base, offline).network is False
    assert sandbox_config(base, offline).allow == ()
    assert egress_allow(base, offline).allowed == base.allow
    wider = parse_repo_config("network: {setup: true, allow: [example.com]}\n")
    with pytest.raises(StepFailed, match=r"asks for example\.com, which the operator does not"):
        check_egress(base, wider)


LOG = [
    "agents-egress 1700000000 10.213.0.3 CONNECT pypi.org 443 TCP_TUNNEL 200",
    "agents-egress 1700000001 10.213.0.3 GET deb.debian.org 80 TCP_MISS 200",
    "agents-egress 1700000002 10.213.0.3 CONNECT example.com 443 TCP_DENIED 403",
    "agents-egress 1700000003 10.213.0.3 CONNECT nosuch.invalid 443 TCP_TUNNEL 503",
    "agents-egress 1700000003 10.213.0.9 CONNECT other.org 443 TCP_TUNNEL 200",
    "agents-egress 1699999999 10.213.0.3 CONNECT old.org 443 TCP_TUNNEL 200",
    "2026/12/04 squid: some message of its own",
    "agents-egress garbage",
]


def test_the_log_says_where_one_sandbox_went() -> None:
    report = egress_log.summarize_access(LOG, "10.213.0.3", 1700000000)
    assert report.reached == ["deb.debian.org", "pypi.org"]
    assert report.denied == ["example.com"]
    assert report.failed == ["nosuch.invalid"]
    assert report.requests == 4
    assert report.summary() == (
        "setup reached 2 hosts; denied example.com; could not reach nosuch.invalid"
    )


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=30))
def test_any_log_line_is_read_without_error(lines: list[str | bytes]) -> None:
    report = egress_log.summarize_access(lines, "10.213.0.3", 0)
    assert report.requests <= len(lines)


def test_reports_merge_bounded() -> None:
    many = EgressReport(reached=[f"h{i}.org" for i in range(MAX_EGRESS_HOSTS)])
    merged = many.merged(EgressReport(reached=["zzz.org"], denied=["x.org"], requests=2))
    assert len(merged.reached) == MAX_EGRESS_HOSTS
    assert merged.truncated
    assert merged.denied == ["x.org"]


def test_a_failed_commands_output_keeps_its_first_and_last_lines() -> None:
    noise = [f"noise {i}" for i in range(500)]
    text = "\n".join(["$ pip install -e .", *noise, "ERROR: the cause"])
    shown = excerpt_lines(text, head=3, tail=2, limit=1800)
    assert shown.startswith("$ pip install -e .")
    assert shown.endswith("ERROR: the cause")
    assert "[... 497 lines cut ...]" in shown


def test_a_proxy_on_another_outside_network_is_outdated_and_that_network_holds_nothing_up() -> None:
    """After AGENTS_EGRESS_NETWORK changes, the proxy the worker made before is renewed
    (its inputs differ), and the old outside network it sits on is not taken for a
    sandbox's network, which would keep it from renewal for good."""
    # Never contacted: a pinned API version skips the version probe.
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    old = EgressProxy(client, EgressConfig(network="agents-egress"))
    new = EgressProxy(client, EgressConfig(network="acme-egress"))
    assert old.inputs("sha256:1", []) != new.inputs("sha256:1", [])
    networks = {
        "agents-egress": {"IPAddress": "172.18.0.2", "IPPrefixLen": 16},
        "acme-egress": {"IPAddress": "172.19.0.2", "IPPrefixLen": 16},
        "agents-7-abc123": {"IPAddress": "10.213.4.18", "IPPrefixLen": 28},
    }
    proxy = Container(attrs={"NetworkSettings": {"Networks": networks}}, client=client)
    assert new._sandbox_networks(proxy) == [ipaddress.IPv4Network("10.213.4.16/28")]
    client.close()
