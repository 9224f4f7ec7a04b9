"""Notifications to the people on call (Apprise) and the status page, folded from the journal."""
