"""Textual widgets of the cockpit, one concern each. They know nothing of runners."""
