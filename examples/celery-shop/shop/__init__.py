"""A small shop's background work: orders recorded and receipts sent, off the request path."""
