"""The arq backend adapter: runs only inside the arq image, never in the harness."""
