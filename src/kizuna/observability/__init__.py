"""Seeing what a running Kizuna does: JSON logs with request ids, health, Prometheus metrics.

* :mod:`.logs` — one JSON object per log line, carrying the request id of
  the request it belongs to, with e-mail addresses and phone numbers masked;
* :mod:`.middleware` — sets/propagates ``X-Request-ID`` and times every
  request by route template and status;
* :mod:`.metrics` — the request histogram and a collector that reads the
  journey queue, sends, dead letters, workers and scoring runs from the
  database at scrape time (no other module has to count anything);
* :mod:`.health` — ``/healthz`` (process up), ``/readyz`` (database
  reachable and migrated), ``/metrics`` (admin API key).
"""
