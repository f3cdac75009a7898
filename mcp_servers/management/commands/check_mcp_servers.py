"""Check every active MCP server now, for a scheduler (cron): one summary line each."""

from django.core.management.base import BaseCommand, CommandError

from mcp_servers import selectors
from mcp_servers.models import McpServer
from mcp_servers.services import mcp_server_check


class Command(BaseCommand):
    help = "Probe every active MCP server; exits non-zero when any check failed."

    def handle(self, *args, **options):
        servers = selectors.mcp_server_list_to_check()
        failed = 0
        total = 0
        for server in servers.iterator():
            total += 1
            server = mcp_server_check(server=server)
            if server.last_check_ok:
                protocol = server.server_info.get("protocol_version", "?")
                line = f"{server.name}: ok, {len(server.tools)} tools, protocol {protocol}"
                if server.tools_changed and not server.tools_fingerprint:
                    line += ", tools await their first approval"
                elif server.tools_changed:
                    line += ", tools changed: review needed"
                self.stdout.write(line)
            elif server.last_check_status == McpServer.CheckStatus.NOT_RUN:
                self.stdout.write(f"{server.name}: not run (stdio)")
            else:
                failed += 1
                self.stdout.write(
                    f"{server.name}: {server.last_check_status}: {server.last_check_error}"
                )
        if failed:
            raise CommandError(f"{failed} of {total} MCP servers failed their check.")
        self.stdout.write(f"{total} MCP servers checked.")
