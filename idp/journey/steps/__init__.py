"""One module per journey step. Each has ``NAME``, ``TEMPLATE`` and:

- ``applies(data, user)``: whether this transaction's flow needs the step at all;
- ``is_done(data, user)``: whether the transaction has already proven what it proves;
- ``context(tenant, data, params, user)``: what its page shows;
- ``submit(tenant, data, form, user)``: an outcome (Success, Challenge, Failure);
- optionally ``prepare(tenant, data, user)``: facts to persist before the page shows;
- optionally ``auto(tenant, data, params)``: an outcome that skips the page (a hint).

A step never calls the next one: the plan picks the first step that applies and is
not done, and the view persists what the step returned.
"""
