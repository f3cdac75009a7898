"""Template context every page (the site's and the admin's) needs."""

from django.utils.functional import SimpleLazyObject

from config.readonly import read_only_state


def read_only(request):
    """`read_only.on` / `read_only.reason` for the site-wide banner.

    Lazy, so a template that never shows the banner costs nothing; the state itself is
    re-read from the database at most every two seconds per process.
    """

    def state():
        on, reason = read_only_state()
        return {"on": on, "reason": reason}

    return {"read_only": SimpleLazyObject(state)}
