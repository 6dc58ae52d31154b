"""The shop's tasks. Each one's side effect is a row in its own SQLite store (SHOP_DB)."""

import os
import sqlite3
import time

from shop.celery_app import app

DB = os.environ.get("SHOP_DB", "/tmp/shop.db")


def _store() -> sqlite3.Connection:
    connection = sqlite3.connect(DB, timeout=10)
    connection.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER, at REAL)")
    connection.execute("CREATE TABLE IF NOT EXISTS outbox (order_id INTEGER, at REAL)")
    return connection


@app.task(name="shop.tasks.record_order")
def record_order(order_id: int) -> None:
    """Check the order (takes a moment, as real work does), then record it."""
    time.sleep(0.8)
    with _store() as connection:
        connection.execute("INSERT INTO orders VALUES (?, ?)", (order_id, time.time()))


@app.task(name="shop.tasks.send_receipt")
def send_receipt(order_id: int) -> None:
    time.sleep(0.2)
    with _store() as connection:
        connection.execute("INSERT INTO outbox VALUES (?, ?)", (order_id, time.time()))
