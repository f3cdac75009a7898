"""Re-encrypt every credential (and the assistant models' API keys, the OAuth tokens and
client secrets) with the first of FERNET_KEYS.

Rotation: put the new key first (FERNET_KEYS=new,old) on every process, run this command, check
that `--dry-run` reports 0, then drop the old key. Batches commit one by one, so the command can
be interrupted and run again; rows already under the first key are skipped.
"""

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from chat.services import language_model_keys_rotate
from credentials.models import Credential
from credentials.services import credential_rotate_batch
from mcp_servers.oauth_services import oauth_connections_rotate


class _Unbuffered:
    """Lets tqdm redraw one line through the command's stderr (which would add newlines)."""

    def __init__(self, wrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()


class Command(BaseCommand):
    help = "Re-encrypt every credential with the first of FERNET_KEYS, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows per batch; each batch is one transaction (default 1000).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the rows that would be re-encrypted; change nothing.",
        )

    def handle(self, *args, batch_size: int, dry_run: bool, verbosity: int, **options) -> None:
        if batch_size < 1:
            batch_size = 1
        total = Credential.objects.count()
        rotated = current = unreadable = 0
        after_id = 0
        with tqdm(
            total=total,
            unit="row",
            desc="checking" if dry_run else "rotating",
            file=_Unbuffered(self.stderr),
            disable=verbosity == 0,
        ) as bar:
            while True:
                batch = credential_rotate_batch(after_id=after_id, size=batch_size, dry_run=dry_run)
                if not batch.seen:
                    break
                after_id = batch.last_id
                rotated += batch.rotated
                current += batch.current
                unreadable += batch.unreadable
                bar.update(batch.seen)
        models_rotated, models_unreadable = language_model_keys_rotate(dry_run=dry_run)
        oauth_rotated, oauth_unreadable = oauth_connections_rotate(dry_run=dry_run)
        seen = rotated + current + unreadable
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(
            f"{rotated} of {seen} credentials {verb} with the first key; "
            f"{current} already under it; {unreadable} unreadable."
        )
        self.stdout.write(
            f"{models_rotated} assistant model API keys {verb}; {models_unreadable} unreadable."
        )
        self.stdout.write(
            f"{oauth_rotated} OAuth secrets (tokens, client secrets) {verb}; "
            f"{oauth_unreadable} unreadable."
        )
        if unreadable:
            self.stderr.write(
                self.style.WARNING(
                    f"{unreadable} credentials open with none of FERNET_KEYS: their owners must "
                    "re-enter them (the API shows them as readable: false)."
                )
            )
