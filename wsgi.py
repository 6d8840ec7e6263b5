"""WSGI entry point: `flask --app wsgi run`, or gunicorn `wsgi:app` in production."""

import os

from contact_center import create_app
from contact_center.runtime import tune_gc

app = create_app()
# After the app exists, so its objects are frozen out of garbage collection.
tune_gc(os.environ.get("GC_THRESHOLDS"))
