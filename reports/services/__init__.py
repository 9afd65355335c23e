"""Every write of the reports app: report requests and rendering, share links, uploads, schedules."""
