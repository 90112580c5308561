import json

from django.core.management.base import BaseCommand, CommandError

from jobs.manager import job_manager
from jobs.registry import InvalidJobParameters, UnknownJobType


class Command(BaseCommand):
    help = "Submit a job and print its id, e.g. submit_job demo.sleep --params '{\"seconds\": 5}'."

    def add_arguments(self, parser):
        parser.add_argument("job_type")
        parser.add_argument("--params", default="{}", help="the job's parameters as a JSON object")
        parser.add_argument("--max-attempts", type=int, default=None)

    def handle(self, job_type, params, max_attempts, **options):
        try:
            parameters = json.loads(params)
        except ValueError as e:
            raise CommandError(f"--params is not valid JSON: {e}")
        try:
            job = job_manager.submit_job(job_type, parameters, max_attempts=max_attempts, submitted_by="cli")
        except (UnknownJobType, InvalidJobParameters) as e:
            raise CommandError(str(e))
        self.stdout.write(str(job.id))
