"""What golive writes for people: the runbook (rendered from the plan), the go-live report
(rendered from a run's journal) and the live progress display."""
