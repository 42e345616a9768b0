"""Notifications: the session's news on a phone or in a chat, through apprise.

`[notify] urls` names the services (one apprise URL each: ntfy, Telegram, Discord, Slack,
e-mail, a JSON webhook ...), `events` what is worth a message: a new best, a pause that
waits for a human (cost limit, provider down, a proposal waiting too long for approval), a
crash streak, a stall (no keep for N experiments or H hours), the session's end, and a
daily summary at a set local time (with the progress plot where the service takes files).

The notifier is a client of the session (`notifier`): the loop never waits on a network. A
watcher folds the feed into notes (`watcher`, no I/O), and each service has a channel
thread of its own that rate-limits (a burst becomes one message), sends, and resends with
a backoff (`services`). A service that still fails is reported once to the session (a
`notify_failed` journal event, the status line) and on stderr; the research goes on.

A service is named by apprise's name for it and where its URL was set ("Telegram
(urls[2])", "ntfy (COCKPIT_NOTIFY_URLS[1])"): the tokens a URL holds never reach the
journal, a log or the screen.

The URLs come from `[notify] urls` in cockpit.toml, the COCKPIT_NOTIFY_URLS environment
variable (whitespace-separated) and the file ~/.config/cockpit/notify (one a line). The
last two are where secrets belong: a run never sees either (the environment it gets drops
COCKPIT_* and every URL; the sandbox hides ~/.config), while a committed cockpit.toml is in
every run's worktree (`cockpit doctor` warns).
"""
