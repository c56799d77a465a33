"""`manage.py rollup_usage [--full]`: bring the daily usage roll-ups up to date by hand."""

from django.core.management.base import BaseCommand

from billing.rollups import rollup_usage


class Command(BaseCommand):
    help = (
        "Recompute daily workspace usage from sync runs recorded since the watermark "
        "(or everything with --full)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--full", action="store_true", help="Recompute every day from all runs."
        )

    def handle(self, *args, full=False, **options):
        result = rollup_usage(full=full)
        if full:
            self.stdout.write(
                f"Full roll-up: rebuilt {result['days_recomputed']} workspace-days from all runs."
            )
        else:
            self.stdout.write(
                f"Incremental roll-up: {result['runs_scanned']} runs recorded after "
                f"{result['since']}; recomputed {result['days_recomputed']} workspace-days."
            )
        self.stdout.write(f"Watermark: {result['previous_watermark']} → {result['watermark']}.")
