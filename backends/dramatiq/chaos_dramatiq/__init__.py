"""The Dramatiq backend adapter: runs only inside the dramatiq image, never in the harness."""
