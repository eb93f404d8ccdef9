"""Recompute every doctor's rating from scratch (docs/ratings.md)."""

from django.core.management.base import BaseCommand

from reviews.services import ratings_recompute_all


class Command(BaseCommand):
    help = "Re-estimate the platform prior and recompute every doctor's rating from their reviews."

    def add_arguments(self, parser):
        parser.add_argument("--keep-prior", action="store_true", help="Use the stored platform prior instead of re-estimating it.")

    def handle(self, *args, keep_prior: bool = False, **options):
        count = ratings_recompute_all(refresh_prior=not keep_prior)
        self.stdout.write(f"Recomputed the ratings of {count} doctor{'s' if count != 1 else ''}.")
