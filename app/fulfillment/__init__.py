"""Fulfilment: fulfilment orders, their lines, shipments, location connectors and their deliveries."""
