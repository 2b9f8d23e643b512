"""Use cases of the loyalty programme engine: earn, redeem, refund, tiers, coupons, jobs.

Every write is a handler that runs inside one unit of work and locks the
member's account row first, so one member's requests are applied one after
another and a retry (same Idempotency-Key) finds the first result.
"""
