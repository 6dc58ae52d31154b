"""The Celery backend adapter: runs only inside the Celery image, never in the harness."""
