"""What cockpit's exit code says: the one place that numbers them.

    0    done
    1    `status` found no session, or `doctor`/`confirm`/`notify --test` found something
    2    a user mistake (one line on stderr), or a command the session refused
    3    a headless session paused with no one to resume it (the cost limit, the model
         provider down, three proposals in a row refused, a full disk, the agent out of
         moves): `cockpit run` resumes it
    4    the research could not go on (the baseline crashed, ten crashes in a row, the data
         changed under the session, the disk too full for cockpit's own records)
    130  stopped with Ctrl-C
"""
EXIT_OK = 0
EXIT_FOUND = 1  # no session (status), or something to fix (doctor, confirm, notify --test)
EXIT_USER = 2
EXIT_PAUSED = 3
EXIT_FAILED = 4
EXIT_INTERRUPTED = 130
