"""Re-encrypt every credential (and the assistant models' API keys, the OAuth tokens and
client secrets) with the first of FERNET_KEYS.

Rotation: put the new key first (FERNET_KEYS=new,old) on every process, run this command (or
start the rotation on the admin's Key rotation page, which runs it as a background job), check
that `--dry-run` reports 0, then drop the old key. Batches commit one by one, so the command can
be interrupted and run again; rows already under the first key are skipped.
"""

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from credentials.rotation import credentials_to_rotate, key_rotate


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
        with tqdm(
            total=credentials_to_rotate(),
            unit="row",
            desc="checking" if dry_run else "rotating",
            file=_Unbuffered(self.stderr),
            disable=verbosity == 0,
        ) as bar:
            done = key_rotate(
                batch_size=batch_size,
                dry_run=dry_run,
                on_batch=lambda batch, progress: bar.update(batch.seen),
            )
        rotated, current, unreadable = done.rotated, done.current, done.unreadable
        models_rotated, models_unreadable = done.models_rotated, done.models_unreadable
        oauth_rotated, oauth_unreadable = done.oauth_rotated, done.oauth_unreadable
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
