import gc
import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    sys.exit(f"atelier: {exc}")

# Import every view now rather than on the first request, then take everything loaded so far
# out of the garbage collector's reach: it lives as long as the process, and a full
# collection that walked it paused a worker in the middle of requests.
get_resolver().url_patterns  # noqa: B018 - the access imports every URLconf and view
gc.freeze()
