"""The HTMX dashboard: one module per page; reads come from monitoring.selectors, actions from
jobs.manager.job_manager.

Live updates are htmx polls of small partials, not server-sent events: the state lives in
the database that every web process shares, so any process can answer a poll with two or
three indexed queries, through any proxy, on plain WSGI workers; an SSE stream would hold a
worker per open tab and need a pub/sub channel between the job workers and the web
processes to know when to push. Polls back off while the tab is hidden.
"""
