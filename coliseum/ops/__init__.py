"""Operations: request metrics, health figures, alerts, the Prometheus endpoint and the console's data.

Not a Django app (no models): state lives in Redis, the periodic work runs from audit.tasks / audit.beat."""
