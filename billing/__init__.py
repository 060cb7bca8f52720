"""Usage metering and plans; usage is reported to Stripe (SaaS deployments only)."""
