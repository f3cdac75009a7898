"""Serve the demo's MCP server on loopback until stopped (or until the process that started it
is gone, so `make run` never leaves one behind)."""

import os
import threading
import time

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from mcp_servers import demo


class Command(BaseCommand):
    help = "Serve the demo MCP server (echo, add, word_count, utc_now) on 127.0.0.1."

    def handle(self, *args, **options):
        port = settings.DEMO_MCP_PORT
        config = uvicorn.Config(
            demo.build_demo_server().streamable_http_app(),
            host=demo.HOST,  # loopback only: the tools are for this machine's demo
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        parent = os.getppid()

        def stop_when_orphaned():
            while not server.should_exit:
                if os.getppid() != parent:
                    server.should_exit = True
                time.sleep(1)

        threading.Thread(target=stop_when_orphaned, daemon=True).start()
        self.stdout.write(f"Demo MCP server on http://{demo.HOST}:{port}/mcp")
        server.run()
