"""Alerts: routes, deliveries, channels, spikes."""
