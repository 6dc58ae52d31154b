"""The RQ backend adapter: runs only inside the rq image, never in the harness."""
