"""The address guard over a table of addresses: every IPv6 disguise of a refused IPv4 address,
the site-local range and the metadata addresses in every form, named in MCP_ALLOWED_HOSTS or
not."""

import pytest

from mcp_servers import client as mcp_client
from mcp_servers.services import mcp_server_check
from tests.factories import McpServerFactory

NEVER = "never reached"
NOT_PUBLIC = "MCP_ALLOWED_HOSTS"

# (address, verdict when not named, verdict when named in MCP_ALLOWED_HOSTS): "" is reached,
# otherwise a phrase of the refusal.
TABLE = [
    # Plain public addresses pass.
    ("93.184.215.14", "", ""),
    ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", "", ""),
    # IPv6 forms of a public IPv4 address are that address.
    ("::ffff:93.184.215.14", "", ""),
    ("2002:5db8:d70e::1", "", ""),
    ("64:ff9b::5db8:d70e", "", ""),
    # Plain non-public addresses: an operator may open them by name.
    ("127.0.0.1", NOT_PUBLIC, ""),
    ("10.1.2.3", NOT_PUBLIC, ""),
    ("100.64.0.1", NOT_PUBLIC, ""),
    ("::1", NOT_PUBLIC, ""),
    ("fd12:3456::1", NOT_PUBLIC, ""),
    ("fe80::1", NOT_PUBLIC, ""),
    # IPv6 disguises of refused IPv4 addresses: refused, named or not.
    ("::ffff:127.0.0.1", NEVER, NEVER),
    ("::ffff:10.0.0.1", NEVER, NEVER),
    ("::7f00:1", NEVER, NEVER),  # IPv4-compatible loopback
    ("::a00:1", NEVER, NEVER),  # IPv4-compatible 10.0.0.1
    ("2002:7f00:1::", NEVER, NEVER),  # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", NEVER, NEVER),  # 6to4 of 192.168.1.1
    ("64:ff9b::7f00:1", NEVER, NEVER),  # NAT64 of 127.0.0.1
    ("64:ff9b::a00:1", NEVER, NEVER),  # NAT64 of 10.0.0.1
    ("64:ff9b:1:7f00:0:100::", NEVER, NEVER),  # local-use NAT64 (/48) of 127.0.0.1
    # The deprecated site-local range.
    ("fec0::1", NEVER, NEVER),
    ("feff:ffff::1", NEVER, NEVER),
    # The metadata addresses in every form.
    ("169.254.169.254", "metadata", "metadata"),
    ("fd00:ec2::254", "metadata", "metadata"),
    ("::ffff:169.254.169.254", "metadata", "metadata"),
    ("::a9fe:a9fe", "metadata", "metadata"),
    ("2002:a9fe:a9fe::", "metadata", "metadata"),
    ("64:ff9b::169.254.169.254", "metadata", "metadata"),
    ("64:ff9b:1:a9fe:a9:fe00::", "metadata", "metadata"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", "metadata", "metadata"),  # Teredo client
    # Not an address at all.
    ("not an address", "did not resolve", "did not resolve"),
]


@pytest.mark.parametrize(("address", "unnamed", "named"), TABLE)
def test_the_guard_over_a_table_of_addresses(address, unnamed, named, settings):
    settings.MCP_ALLOWED_HOSTS = []
    verdict = mcp_client.address_verdict("host.test", 443, [address])
    assert (unnamed in verdict) if unnamed else verdict == "", verdict

    settings.MCP_ALLOWED_HOSTS = ["host.test"]
    verdict = mcp_client.address_verdict("host.test", 443, [address])
    assert (named in verdict) if named else verdict == "", verdict


def test_one_refused_address_among_several_refuses_the_host(settings):
    settings.MCP_ALLOWED_HOSTS = ["host.test"]

    verdict = mcp_client.address_verdict("host.test", 443, ["127.0.0.1", "::ffff:a9fe:a9fe"])

    assert "metadata" in verdict


@pytest.mark.django_db
@pytest.mark.parametrize(
    "host",
    [
        "2852039166",  # the metadata address as one decimal number, resolved by the system
        "0xa9fea9fe",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a9fe:a9fe]",
    ],
)
def test_a_check_never_reaches_the_metadata_address_however_it_is_written(host, settings):
    settings.MCP_ALLOWED_HOSTS = [host.strip("[]")]

    server = mcp_server_check(server=McpServerFactory(url=f"http://{host}/mcp", credential_spec=[]))

    assert server.last_check_status == "refused"
    assert "metadata" in server.last_check_error
