"""The Celery app, configured from its own settings module as most teams do."""

from celery import Celery

app = Celery("shop")
app.config_from_object("shop.celeryconfig")
app.autodiscover_tasks(["shop"])
