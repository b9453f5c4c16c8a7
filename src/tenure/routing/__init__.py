"""Routing: alerts, daily digests and automated play steps sent to Slack, email and webhooks.

:mod:`~tenure.routing.routes` reads the routing file (TENURE_ROUTES, docs/routing.md);
:mod:`~tenure.routing.deliver` queues deliveries, sends what is due with retries and keeps the dead
letters; :mod:`~tenure.routing.digest` queues the daily digest per owner;
:mod:`~tenure.routing.channels` holds the three transports and the webhook signature;
:mod:`~tenure.routing.messages` says what each delivery says.
"""
