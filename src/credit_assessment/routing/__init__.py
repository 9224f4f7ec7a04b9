"""Which engine decides each request — legacy or new — and the shadow comparison of the two.

The split is the OpenFeature flag ``new-credit-assessment-enabled``, evaluated in-process by the
flagd provider from a flag-definition file with a ``fractional`` rollout keyed on the client id,
so each client sticks to one engine while the percentage rises.
"""

FLAG_KEY = "new-credit-assessment-enabled"
ENGINE_NEW = "new"
ENGINE_LEGACY = "legacy"
