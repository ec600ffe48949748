"""The hosted sign-in (DESIGN §4): transaction, plan, steps, outcomes; one view advances."""
