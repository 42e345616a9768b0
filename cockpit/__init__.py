"""cockpit: an autonomous ML research loop with a terminal cockpit on top.

The package's folders are its layers, each importing only those below it:

    cli        the command line (nothing imports it)
    serve      the cockpit in a browser
    tui        the cockpit in a terminal (Textual): app, screens, widgets
    notify     notifications: a client of the session
    tracking   TensorBoard, W&B, MLflow: an exporter beside the session, reading its journal
    client     the session's client side: connect, subscribe, start a session
    session    the session process: its loop and the parts that decide, its server
    protocol   the wire between the session and its clients
    agents     who proposes the next change (tune, llm, command)
    runners    where runs execute: the watchdog, the sandbox, the worker pools
    workspace  the files of a workspace: paths, config, git, journal, records
    domain     pure: events, the fold, the metric, judging, early stop
"""
__version__ = "0.1.0"
