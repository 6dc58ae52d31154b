"""The FastAPI BackgroundTasks adapter: runs only inside its image, never in the harness."""
