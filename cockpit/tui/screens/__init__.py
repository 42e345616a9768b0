"""The cockpit's screens: main panes, help, confirm, note prompt, replay."""
